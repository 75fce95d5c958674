import Foundation
import Testing
@testable import Formats
import TestSupport
import Llama
import TensorCore

/// A scratch folder for files the test writes.
func scratchFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-tests-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

@Suite("llama2.c checkpoints, tokenizer and the greedy oracle")
struct Llama2cTests {
    @Test("stories260K greedy decoding reproduces run.c byte for byte", .enabled(if: SharedReal.available))
    func greedyOracle() throws {
        let loaded = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        var sampler = Sampler(temperature: 0, seed: 0)
        let ids = try loaded.model.generate(
            prompt: [1], maxNewTokens: 200, sampler: &sampler, stop: loaded.tokenizer.stopTokens)
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: SharedReal.stories + "/expected_greedy_200.tokens.json")))
            as! [String: Any]
        let expectedIDs = (json["ids"] as! [Int]).map(Int32.init)
        #expect([1] + ids == expectedIDs)
        let expectedText = try String(contentsOfFile: SharedReal.stories + "/expected_greedy_200.txt", encoding: .utf8)
        #expect(loaded.tokenizer.decode(ids, after: 1) == expectedText)
    }

    @Test("the KV cache gives the same logits as a full forward pass", .enabled(if: SharedReal.available))
    func cacheMatchesFullForward() throws {
        let loaded = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        let m = loaded.model, v = m.config.vocabSize
        var sampler = Sampler(temperature: 0.9, seed: 3)
        let tokens = [1] + (try m.generate(prompt: [1], maxNewTokens: 104, sampler: &sampler))
        let full = try m.logits(TokenBatch(batchSize: 1, length: tokens.count, inputs: tokens, targets: tokens))
        let cache = KVCache(config: m.config, capacity: tokens.count, ledger: MemoryLedger())
        // A prefill longer than one attention query block, then one token at a time.
        let prefill = 100
        var incremental = try m.nextTokenLogits(Array(tokens[0..<prefill]), cache: cache)
        #expect(zip(incremental, full[(prefill - 1) * v..<prefill * v]).allSatisfy { abs($0 - $1) < 1e-4 })
        for t in prefill..<tokens.count {
            incremental = try m.nextTokenLogits([tokens[t]], cache: cache)
            #expect(zip(incremental, full[t * v..<(t + 1) * v]).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test("the tokenizer encodes run.c's way and decodes back", .enabled(if: SharedReal.available))
    func tokenizerRoundTrip() throws {
        let tok = try ScoredPieceTokenizer.llama2c(path: SharedReal.tokenizer, vocabularySize: 512)
        let text = "Once upon a time, there was a little girl named Lily."
        let ids = tok.encode(text)
        #expect(ids.first == 403)  // " Once", merged with the dummy-prefix space
        #expect(tok.decode(ids, after: 1) == text)
        // Characters outside the vocabulary fall back to their UTF-8 bytes and decode to the same text.
        #expect(tok.decode(tok.encode("naïve café ✓"), after: 1) == "naïve café ✓")
    }

    @Test(
        "the merge table gives run.c's ids: its string-concatenation loop as the oracle, on TinyStories text",
        .enabled(if: SharedReal.available))
    func mergesMatchRunC() throws {
        let tok = try ScoredPieceTokenizer.llama2c(path: SharedReal.tokenizer, vocabularySize: 512)
        var ids: [[UInt8]: Int32] = [:]
        for (i, p) in tok.pieces.enumerated() where ids[p] == nil { ids[p] = Int32(i) }
        // run.c's bpe_encode: characters (or their bytes' <0xHH> pieces), then merge the best-scoring pair, first on
        // ties.
        func runC(_ text: String) -> [Int32] {
            var tokens: [Int32] = text.isEmpty ? [] : [ids[[0x20]]!]  // the dummy prefix, for non-empty text
            for scalar in text.unicodeScalars {
                let utf8 = Array(String(scalar).utf8)
                tokens += ids[utf8].map { [$0] } ?? utf8.map { ids[Array(String(format: "<0x%02X>", $0).utf8)]! }
            }
            while true {
                var best: (score: Float, index: Int, id: Int32)?
                for i in 0..<max(0, tokens.count - 1) {
                    if let id = ids[tok.pieces[Int(tokens[i])] + tok.pieces[Int(tokens[i + 1])]],
                        best == nil || tok.scores[Int(id)] > best!.score
                    {
                        best = (tok.scores[Int(id)], i, id)
                    }
                }
                guard let b = best else { return tokens }
                tokens[b.index] = b.id
                tokens.remove(at: b.index + 1)
            }
        }
        let lines = try String(contentsOfFile: SharedReal.tinyStories, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 20)
        for text in lines.map(String.init) + ["naïve café ✓ — 東京", "", "  two  spaces\tand a tab"] {
            #expect(tok.encode(text) == runC(text), "\(text)")
        }
    }

    @Test("a truncated checkpoint names the file and the byte counts", .enabled(if: SharedReal.available))
    func truncated() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SharedReal.model)))
        let path = try scratchFile("truncated.bin", Array(bytes.prefix(bytes.count - 100)))
        let error = try #require(throws: FormatError.self) { try Llama2cCheckpoint.load(path, ledger: MemoryLedger()) }
        #expect(error.file == path)
        #expect(error.problem.contains("1056540 bytes but the file has 1056440"))
        #expect(error.fix.contains("truncated"))
    }

    @Test("a checkpoint with extra bytes is refused", .enabled(if: SharedReal.available))
    func extraBytes() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: SharedReal.model)))
        let path = try scratchFile("long.bin", bytes + [0, 0, 0, 0])
        let error = try #require(throws: FormatError.self) { try Llama2cCheckpoint.load(path, ledger: MemoryLedger()) }
        #expect(error.problem.contains("the file has 1056544"))
    }

    @Test("an impossible header shape is refused by name")
    func impossibleShape() throws {
        var header: [Int32] = [64, 172, 5, 7, 4, 512, 512]  // 64 is not divisible by 7 heads
        let bytes = header.withUnsafeMutableBytes { Array($0) }
        let path = try scratchFile("shape.bin", bytes)
        let error = try #require(throws: FormatError.self) { try Llama2cCheckpoint.load(path, ledger: MemoryLedger()) }
        #expect(error.problem.contains("not divisible by heads 7"))
    }

    @Test("a tokenizer whose size disagrees with the model is refused", .enabled(if: SharedReal.available))
    func tokenizerSizeMismatch() throws {
        let small = try #require(throws: FormatError.self) {
            try ScoredPieceTokenizer.llama2c(path: SharedReal.tokenizer, vocabularySize: 600)
        }
        #expect(small.problem.contains("holds 512 tokens but the model's vocabulary has 600"))
        let large = try #require(throws: FormatError.self) {
            try ScoredPieceTokenizer.llama2c(path: SharedReal.tokenizer, vocabularySize: 500)
        }
        #expect(large.problem.contains("larger than the model's vocabulary"))
    }

    @Test("a missing file and a missing tokenizer are clear errors", .enabled(if: SharedReal.available))
    func missing() throws {
        let error = try #require(throws: FormatError.self) {
            try ModelFile.load("/nonexistent/model.bin", tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        }
        #expect(error.file == "/nonexistent/model.bin" && error.problem.contains("cannot open"))
        let noTokenizer = try #require(throws: FormatError.self) {
            try ModelFile.load(SharedReal.model, tokenizer: nil, ledger: MemoryLedger())
        }
        #expect(noTokenizer.fix.contains("--tokenizer"))
    }

    @Test(
        "token ids outside the vocabulary and over-long sequences are refused before running",
        .enabled(if: SharedReal.available))
    func badBatch() throws {
        let loaded = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        #expect(throws: LlamaError.self) {
            try loaded.model.loss(TokenBatch(batchSize: 1, length: 2, inputs: [1, 512], targets: [5, 6]))
        }
        let long = [Int32](repeating: 5, count: 513)
        #expect(throws: LlamaError.self) {
            try loaded.model.loss(TokenBatch(batchSize: 1, length: 513, inputs: long, targets: long))
        }
    }
}
