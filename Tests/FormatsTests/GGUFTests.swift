import Foundation
import TestSupport
import Testing
@testable import Formats
import Llama
import TensorCore

/// The SmolLM2-135M-Instruct GGUF fetched by scripts/get-smollm2.sh into ./cache (outside git).
enum SmolLM2 {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("cache/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var available: Bool { FileManager.default.fileExists(atPath: path) }
}

@Suite("GGUF")
struct GGUFTests {
    struct BlockCase: Decodable {
        let type: UInt32, name: String, count: Int, bytes: String, values: [Float]
    }

    @Test("every block type dequantizes as gguf-py does")
    func dequantize() throws {
        let cases = try JSONDecoder().decode([BlockCase].self, from: Data(contentsOf: fixtureURL("gguf-blocks.json")))
        #expect(Set(cases.map(\.type)) == Set(GGMLType.allCases.filter { $0 != .f32 }.map(\.rawValue)))
        for c in cases {
            let type = try #require(GGMLType(rawValue: c.type))
            let raw = try #require(Data(base64Encoded: c.bytes))
            #expect(raw.count == type.byteCount(c.count))
            var out = [Float](repeating: .nan, count: c.count)
            raw.withUnsafeBytes { type.dequantize($0.baseAddress!, &out, count: c.count) }
            let scale = c.values.map(abs).max()!
            let worst = zip(out, c.values).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-6 * scale, "\(c.name): max difference \(worst) (values up to \(scale))")
        }
    }

    @Test("a file that is not GGUF, and a truncated GGUF, are refused with the file named")
    func badFiles() throws {
        let notGGUF = try scratchFile("not.gguf", Array("hello, this is not a model".utf8))
        let e1 = try #require(throws: FormatError.self) { try GGUFFile(path: notGGUF) }
        #expect(e1.file == notGGUF && e1.problem.contains("not a GGUF file"))
        var header: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0]
        header += [5, 0, 0, 0, 0, 0, 0, 0] + Array("w.bin".utf8)  // one tensor, then the file ends
        let truncated = try scratchFile("truncated.gguf", header)
        let e2 = try #require(throws: FormatError.self) { try GGUFFile(path: truncated) }
        #expect(e2.problem.contains("the file ends at byte \(header.count)"))
    }

    @Test("SmolLM2: tokenizer ids match the tokenizers library and decode back", .enabled(if: SmolLM2.available))
    func smolTokenizer() throws {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixtureURL("smollm2-tokenizer.json")))
        let tok = try GGUFTokenizer.load(GGUFFile(path: SmolLM2.path))
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "\(c.text.debugDescription)")
            #expect(tok.decode(c.ids) == c.text, "\(c.text.debugDescription)")
        }
    }

    @Test("SmolLM2: answers the capital of France with Paris (ChatML, greedy)", .enabled(if: SmolLM2.available))
    func smolAnswersParis() throws {
        let loaded = try ModelFile.load(SmolLM2.path, tokenizer: nil, ledger: MemoryLedger())
        #expect(
            loaded.model.config.layerCount == 30 && loaded.model.config.kvHeadCount == 3
                && loaded.model.config.tiedEmbeddings)
        let template = try #require(loaded.chatTemplate)
        let prompt = try template.render(
            [ChatMessage(role: "user", content: "What is the capital of France?")], addGenerationPrompt: true)
        #expect(prompt.hasPrefix("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"))
        var sampler = Sampler(temperature: 0, seed: 0)
        let ids = try loaded.model.generate(
            prompt: loaded.tokenizer.encode(prompt), maxNewTokens: 20, sampler: &sampler,
            stop: loaded.tokenizer.stopTokens)
        #expect(loaded.tokenizer.decode(ids).contains("Paris"))
    }
}

@Suite("GGUF with a SentencePiece (llama) vocabulary")
struct GGUFLlamaVocabularyTests {
    /// stories260K written by scripts/make_fixtures.py with gguf-py: tok512 as a `llama` vocabulary, Q8_0/F16 weights.
    static let path = fixtureURL("stories260K-llama-vocab.gguf").path

    @Test("the vocabulary encodes and decodes as llama2.c's tokenizer.bin does", .enabled(if: SharedReal.available))
    func tokenizer() throws {
        let gguf = try GGUFTokenizer.load(GGUFFile(path: Self.path))
        let reference = try ScoredPieceTokenizer.llama2c(path: SharedReal.tokenizer, vocabularySize: 512)
        #expect(gguf.bos == 1 && gguf.stopTokens == [2])
        for text in [
            "Once upon a time, there was a little girl named Lily.", "naïve café ✓ 😀", "  two  spaces",
            "Tom's ball\nnew line",
        ] {
            let ids = gguf.encode(text)
            #expect(ids == reference.encode(text), "\(text.debugDescription)")
            #expect(gguf.decode(ids, after: 1) == text)
        }
        #expect(gguf.encode("<s>") == [1])  // control tokens are matched in text
    }

    @Test("the Q8_0/F16 model stays close to the fp32 llama2.c model", .enabled(if: SharedReal.available))
    func model() throws {
        let quantized = try ModelFile.load(Self.path, tokenizer: nil, ledger: MemoryLedger())
        let reference = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        var c = quantized.model.config
        c.maxSequenceLength = reference.model.config.maxSequenceLength
        #expect(c == reference.model.config)
        #expect(quantized.source.contains("Q8_0") && quantized.source.contains("F16"))
        let ids: [Int32] = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376]
        let batch = TokenBatch(batchSize: 1, length: ids.count, inputs: ids, targets: ids)
        let a = try quantized.model.logits(batch), b = try reference.model.logits(batch)
        let worst = zip(a, b).map { abs($0 - $1) }.max()!, scale = b.map(abs).max()!
        #expect(worst < 0.05 * scale)  // measured: 0.21 of 19.5 (Q8_0 + F16 rounding)
    }
}
