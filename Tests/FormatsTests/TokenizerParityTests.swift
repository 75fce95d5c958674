import Foundation
import Testing
@testable import Formats

@Suite("Tokenizer parity with the tokenizers library")
struct TokenizerParityTests {
    struct Case: Decodable { let text: String; let ids: [Int32] }

    @Test("a byte-level BPE trained with Llama 3's pre-tokenizer: every id, and decode(encode(s)) == s")
    func llama3Split() throws {
        let tok = try HFTokenizer.load(fixtureURL("bpe-llama3-split.tokenizer.json").path, tokenizerConfig: [:], generationConfig: [:])
        #expect((tok as? ByteLevelBPETokenizer)?.splitPattern == .llama3)
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixtureURL("bpe-llama3-split.ids.json")))
        #expect(cases.count == 65)
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.text, "\(c.text.debugDescription)")
        }
    }
}
