import Foundation
import TestSupport
import Testing
@testable import Formats

@Suite("Tokenizer parity with the tokenizers library")
struct TokenizerParityTests {
    struct Case: Decodable { let text: String; let ids: [Int32] }

    @Test("a byte-level BPE trained with Llama 3's pre-tokenizer: every id, and decode(encode(s)) == s")
    func llama3Split() throws {
        let tok = try HFTokenizer.load(
            fixtureURL("bpe-llama3-split.tokenizer.json").path, tokenizerConfig: [:], generationConfig: [:])
        #expect((tok as? ByteLevelBPETokenizer)?.splitPattern == .llama3)
        let cases = try JSONDecoder().decode(
            [Case].self, from: Data(contentsOf: fixtureURL("bpe-llama3-split.ids.json")))
        #expect(cases.count == 225)
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.text, "\(c.text.debugDescription)")
        }
    }

    @Test("a SentencePiece-style BPE (Llama 2 normalizer, byte fallback) trained by tokenizers: ids and decoded text")
    func sentencePiece() throws {
        struct DecodedCase: Decodable { let text: String; let ids: [Int32]; let decoded: String }
        let tok = try HFTokenizer.load(
            fixtureURL("bpe-sentencepiece.tokenizer.json").path, tokenizerConfig: [:], generationConfig: [:])
        #expect(tok is SentencePieceBPETokenizer)
        let cases = try JSONDecoder().decode(
            [DecodedCase].self, from: Data(contentsOf: fixtureURL("bpe-sentencepiece.ids.json")))
        #expect(cases.count == 219)
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.decoded, "\(c.text.debugDescription)")
        }
    }
}
