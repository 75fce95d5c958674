import Foundation
import TestSupport
import Testing
@testable import Formats
import Llama
import TensorCore

@Suite("GGUF export")
struct GGUFExportTests {
    /// A model whose rows fill Q8_0 blocks except the MLP's down projection (80 columns), with the export tests'
    /// byte-level tokenizer and a chat template, in `layout`.
    static func tinyModel(_ layout: RoPELayout) throws -> LoadedModel {
        let c = LlamaConfig(
            dim: 64, ffnDim: 80, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 263, maxSequenceLength: 32,
            ropeTheta: 500, ropeLayout: layout, tiedEmbeddings: false)
        let store = FP32ParameterStore(layout: ParameterLayout(c), ledger: MemoryLedger())
        store.initializeRandomly(Philox(seed: 11), std: 0.3)
        return LoadedModel(
            model: try LlamaModel(config: c, store: store, ledger: MemoryLedger()),
            tokenizer: try ExportTests.tinyTokenizer(), chatTemplate: .chatML(defaultSystem: nil),
            chatTemplateSource: "{{ '<|im_start|>' }}")
    }

    static func path(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("leantune-gguf-\(getpid())-\(name).gguf").path
    }

    static func floats(_ loaded: LoadedModel) -> [Float] {
        Array((loaded.model.store as! FP32ParameterStore).slab.buffer)
    }

    @Test("a Hugging Face (rotate-half) model written as F32 reads back with llama.cpp's q/k order and the same logits")
    func rotateHalf() throws {
        let original = try Self.tinyModel(.rotateHalf), path = Self.path("rotate-half")
        try GGUFModel.export(original, to: path, type: .f32)
        let reloaded = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        #expect(reloaded.model.config.ropeLayout == .adjacentPairs)
        var expected = original.model.config
        expected.ropeLayout = .adjacentPairs
        #expect(reloaded.model.config == expected)
        let batch = TokenBatch(sequences: [[1, 5, 9, 200, 7, 3, 261, 40, 41]])
        let a = try original.model.logits(batch), b = try reloaded.model.logits(batch)
        #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 })
        let text = "<|im_start|>the 2024 theme<|im_end|>"
        #expect(reloaded.tokenizer.encode(text) == original.tokenizer.encode(text))
        #expect(reloaded.tokenizer.stopTokens == original.tokenizer.stopTokens)
        #expect(reloaded.chatTemplateSource == original.chatTemplateSource)
        // The q/k rows are the only tensors that move: everything else is bit for bit.
        let again = Self.path("rotate-half-again")
        try GGUFModel.export(reloaded, to: again, type: .f32)  // already adjacent: written as is
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: again)))
    }

    @Test(
        """
        RoPE scaling survives GGUF: linear as metadata, Llama 3's as the rope_freqs tensor (read back as llama3), \
        other per-pair factors as themselves, YaRN as metadata; dynamic, a YaRN llama.cpp does not compute and \
        LongRoPE outside Phi-3 are refused, saying why
        """)
    func ropeScaling() throws {
        let llama3 = RoPEScaling.llama3(
            factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 8192)
        let factors = RoPEScaling.frequencyFactors((0..<8).map { 1 + Double($0) / 4 })
        let batch = TokenBatch(sequences: [[1, 5, 9, 200, 7, 3, 261, 40, 41]])
        let yarn = RoPEScaling.yarn(
            factor: 4, originalContextLength: 8, betaFast: 32, betaSlow: 1, truncate: true,
            attentionFactor: RoPEScaling.yarnAttentionFactor(factor: 4))
        for (k, scaling) in [RoPEScaling.linear(factor: 4), llama3, factors, yarn].enumerated() {
            var loaded = try Self.tinyModel(.adjacentPairs)  // head dim 16: wavelengths on both sides of Llama 3's band
            var c = loaded.model.config
            (c.ropeScaling, c.ropeTheta) = (scaling, 500_000)
            loaded.model = try LlamaModel(config: c, store: loaded.model.store, ledger: MemoryLedger())
            let path = Self.path("rope-scaling-\(k)")
            try GGUFModel.export(loaded, to: path, type: .f32)
            let file = try GGUFFile(path: path)
            #expect((file.tensors[GGUFModel.frequencyFactorsTensor] != nil) == (k == 1 || k == 2), "\(scaling)")
            let reloaded = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
            #expect(reloaded.model.config.ropeScaling == scaling)
            #expect(try reloaded.model.logits(batch) == loaded.model.logits(batch), "\(scaling)")
        }
        for (scaling, reason) in [
            (RoPEScaling.dynamic(factor: 2, contextLength: 32), "which llama.cpp's llama does not compute"),
            (
                .yarn(
                    factor: 4, originalContextLength: 8, betaFast: 32, betaSlow: 1, truncate: true, attentionFactor: 1.1
                ),
                "is not the form llama.cpp computes"
            ),
            (
                .longRoPE(
                    shortFactors: [Double](repeating: 1, count: 8), longFactors: [Double](repeating: 2, count: 8),
                    originalContextLength: 16, attentionFactor: 1.1), "which llama.cpp's llama does not compute"
            ),
        ] {
            var loaded = try Self.tinyModel(.adjacentPairs)
            var c = loaded.model.config
            c.ropeScaling = scaling
            loaded.model = try LlamaModel(config: c, store: loaded.model.store, ledger: MemoryLedger())
            let error = try #require(throws: FormatError.self) {
                try GGUFModel.export(loaded, to: Self.path("rope-refused"), type: .f32)
            }
            #expect("\(error)".contains(reason) && error.fix.contains("--format hf"), "\(error)")
        }
    }

    @Test("F16, BF16 and Q8_0 read back within their rounding", arguments: [GGMLType.f16, .bf16, .q8_0])
    func types(type: GGMLType) throws {
        let original = try Self.tinyModel(.adjacentPairs), path = Self.path("\(type.name)")
        let notes = try GGUFModel.export(original, to: path, type: type)
        let reloaded = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        let file = try GGUFFile(path: path), layout = original.model.layout
        for info in layout.parameters where !(original.model.config.tiedEmbeddings && info.role == .head) {
            let t = try #require(file.tensors[GGUFModel.tensorName(info)])
            let expectedType: GGMLType =
                info.shape.count == 1 ? .f32 : (type == .q8_0 && info.shape[1] % 32 != 0) ? .f16 : type
            #expect(t.type == expectedType, "\(info.name)")
        }
        #expect(
            notes.count
                == (type == .q8_0 ? layout.parameters.filter { $0.shape.count == 2 && $0.shape[1] % 32 != 0 }.count : 0)
        )
        let (a, b) = (Self.floats(original), Self.floats(reloaded))
        let rms = (zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(a.count)).squareRoot()
        let scale = (a.map { Double($0) * Double($0) }.reduce(0, +) / Double(a.count)).squareRoot()
        let bound = ["F16": 1e-3, "BF16": 4e-3, "Q8_0": 1e-2][type.name]!
        #expect(rms / scale < bound && rms > 0, "\(type.name): relative RMS error \(rms / scale)")
    }

    @Test(
        "stories260K (llama2.c, SentencePiece scores) exported as F32 tokenizes and generates as before",
        .enabled(if: SharedReal.available))
    func stories() throws {
        let original = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        let path = Self.path("stories")
        try GGUFModel.export(original, to: path, type: .f32)
        let reloaded = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        #expect(Self.floats(reloaded) == Self.floats(original))
        let text = "Once upon a time, Lily saw a big red ball."
        #expect(reloaded.tokenizer.encode(text) == original.tokenizer.encode(text))
        #expect(
            reloaded.tokenizer.bos == original.tokenizer.bos
                && reloaded.tokenizer.stopTokens == original.tokenizer.stopTokens)
        func greedy(_ m: LoadedModel) throws -> [Int32] {
            var sampler = Sampler(temperature: 0, seed: 0)
            return try m.model.generate(prompt: [1] + m.tokenizer.encode(text), maxNewTokens: 20, sampler: &sampler)
        }
        #expect(try greedy(reloaded) == greedy(original))
    }

    /// A tiny random model over the SentencePiece-style BPE fixture (Llama 2's and Gemma's kind of tokenizer.json),
    /// written to GGUF; with the fixture's texts and the ids the tokenizers library gave them.
    static func sentencePieceExport(_ name: String) throws -> (path: String, cases: [(text: String, ids: [Int32])]) {
        struct Case: Decodable { let text: String; let ids: [Int32] }
        let tokenizer = try HFTokenizer.load(
            fixtureURL("bpe-sentencepiece.tokenizer.json").path, tokenizerConfig: [:], generationConfig: [:])
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 1, headCount: 2, kvHeadCount: 2, vocabSize: tokenizer.vocabularySize,
            maxSequenceLength: 32)
        let loaded = LoadedModel(
            model: try LlamaModel(randomWeights: c, seed: 3, ledger: MemoryLedger()), tokenizer: tokenizer,
            chatTemplate: nil, chatTemplateSource: nil)
        let path = Self.path(name)  // one file per test: tests run in parallel
        try GGUFModel.export(loaded, to: path, type: .f32)
        let cases = try JSONDecoder().decode(
            [Case].self, from: Data(contentsOf: fixtureURL("bpe-sentencepiece.ids.json")))
        return (path, cases.map { ($0.text, $0.ids) })
    }

    @Test(
        """
        a SentencePiece-style BPE tokenizer.json is written as llama.cpp's SentencePiece vocabulary, scored so that \
        merges keep their ranks: read back, it gives the tokenizers library's ids for every fixture text
        """)
    func sentencePieceBPE() throws {
        let (path, cases) = try Self.sentencePieceExport("sentencepiece-bpe")
        let reloaded = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        #expect(reloaded.tokenizer is ScoredPieceTokenizer)
        for c in cases { #expect(reloaded.tokenizer.encode(c.text) == c.ids, "\(c.text.debugDescription)") }
    }

    @Test(
        "llama.cpp tokenizes every fixture text of the exported SentencePiece-style BPE as the tokenizers library does",
        .enabled(if: llamaCpp))
    func llamaCppSentencePieceBPE() throws {
        let (path, cases) = try Self.sentencePieceExport("sentencepiece-bpe-llama-cpp")
        let script = """
            import json, sys
            from llama_cpp import Llama
            llm = Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
            texts = json.loads(sys.stdin.read())
            print(json.dumps([llm.tokenize(t.encode(), add_bos=False, special=True) for t in texts]))
            """
        let texts = String(decoding: try JSONSerialization.data(withJSONObject: cases.map(\.text)), as: UTF8.self)
        let data = try #require(try Self.pythonOutput(script, [path], input: texts), "llama.cpp could not read it")
        let ids = try #require(try JSONSerialization.jsonObject(with: data) as? [[Int]])
        #expect(ids.count == cases.count)
        for (c, got) in zip(cases, ids) { #expect(got.map { Int32($0) } == c.ids, "\(c.text.debugDescription)") }
    }

    static let ggufPy = python("import gguf")

    @Test("gguf-py (llama.cpp's reader library) reads the metadata, tensor shapes and types back", .enabled(if: ggufPy))
    func ggufPyReads() throws {
        let original = try Self.tinyModel(.rotateHalf), path = Self.path("gguf-py"), f32 = Self.path("gguf-py-f32")
        try GGUFModel.export(original, to: path, type: .q8_0)
        try GGUFModel.export(original, to: f32, type: .f32)
        // Besides the fields: every Q8_0 tensor's bytes against gguf-py's own quantization of the F32 file's tensor.
        let script = """
            import gguf, gguf.quants, json, sys
            import numpy as np
            r, full = gguf.GGUFReader(sys.argv[1]), {t.name: t for t in gguf.GGUFReader(sys.argv[2]).tensors}
            f = r.fields
            def ours(t): return bytes(np.asarray(t.data).tobytes())
            def theirs(t):
                values = np.asarray(full[t.name].data, dtype=np.float32)
                return bytes(gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0).tobytes())
            same = [ours(t) == theirs(t) for t in r.tensors if t.tensor_type.name == "Q8_0"]
            print(json.dumps({
                "q8_0": len(same), "q8_0_equal": sum(same),
                "architecture": f["general.architecture"].contents(),
                "blocks": f["llama.block_count"].contents(), "heads_kv": f["llama.attention.head_count_kv"].contents(),
                "tokenizer": f["tokenizer.ggml.model"].contents(), "pre": f["tokenizer.ggml.pre"].contents(),
                "tokens": len(f["tokenizer.ggml.tokens"].contents()),
                "merges": len(f["tokenizer.ggml.merges"].contents()),
                "eos": f["tokenizer.ggml.eos_token_id"].contents(), "template": f["tokenizer.chat_template"].contents(),
                "tensors": {t.name: [[int(d) for d in t.shape], t.tensor_type.name] for t in r.tensors}}))
            """
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, path, f32]
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
        let read = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let c = original.model.config
        #expect(read["architecture"] as? String == "llama" && read["blocks"] as? Int == c.layerCount)
        #expect(read["heads_kv"] as? Int == c.kvHeadCount && read["tokenizer"] as? String == "gpt2")
        #expect(
            read["pre"] as? String == "smollm" && read["tokens"] as? Int == c.vocabSize && read["merges"] as? Int == 5)
        #expect(read["eos"] as? Int == 262 && read["template"] as? String == original.chatTemplateSource)
        let tensors = try #require(read["tensors"] as? [String: [Any]])
        let layout = original.model.layout
        #expect(tensors.count == layout.parameters.count)
        let quantized = layout.parameters.filter { $0.shape.count == 2 && $0.shape[1] % 32 == 0 }.count
        #expect(read["q8_0"] as? Int == quantized && read["q8_0_equal"] as? Int == quantized, "Q8_0 bytes as gguf-py's")
        for info in layout.parameters {
            let t = try #require(tensors[GGUFModel.tensorName(info)], "\(info.name)")
            #expect(t[0] as? [Int] == Array(info.shape.reversed()), "\(info.name)")
            #expect(t[1] as? String == (info.shape.count == 1 ? "F32" : info.shape[1] % 32 == 0 ? "Q8_0" : "F16"))
        }
    }

    static let llamaCpp = python("import llama_cpp")

    /// The `count` greedy tokens llama.cpp (llama-cpp-python) decodes from the GGUF file at `path` after `prompt`.
    static func llamaCppGreedy(_ path: String, prompt: [Int32], count: Int) throws -> [Int32]? {
        let script = """
            import json, sys
            from llama_cpp import Llama
            llm = Llama(model_path=sys.argv[1], n_ctx=64, verbose=False, n_threads=2)
            out = []
            for t in llm.generate(json.loads(sys.argv[2]), temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
                if len(out) == int(sys.argv[3]): break
                out.append(t)
            print(json.dumps(out))
            """
        guard let data = try pythonOutput(script, [path, "\(prompt)", "\(count)"]) else { return nil }
        return (try JSONSerialization.jsonObject(with: data) as? [Int])?.map { Int32($0) }
    }

    /// What python3 prints running `script` with `arguments` (and `input` on its standard input); nil when it fails.
    static func pythonOutput(_ script: String, _ arguments: [String], input: String? = nil) throws -> Data? {
        let p = Process(), out = Pipe(), stdin = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + arguments
        (p.standardOutput, p.standardError, p.standardInput) = (out, FileHandle.nullDevice, stdin)
        try p.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data((input ?? "").utf8))
        try stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return p.terminationStatus == 0 ? data : nil
    }

    @Test(
        """
        llama.cpp applies the rope_freqs factors as we do: its greedy tokens of a model with per-pair factors equal \
        ours, which differ from the model's without them
        """,
        .enabled(if: llamaCpp))
    func llamaCppFrequencyFactors() throws {
        var loaded = try Self.tinyModel(.adjacentPairs)
        var c = loaded.model.config
        (c.ropeTheta, c.ropeScaling) = (10_000, .frequencyFactors([1, 2, 4, 8, 16, 32, 64, 128]))
        let unscaled = loaded.model
        loaded.model = try LlamaModel(config: c, store: unscaled.store, ledger: MemoryLedger())
        let prompt: [Int32] = [1, 5, 9, 200]
        func greedy(_ m: LlamaModel) throws -> [Int32] {
            var sampler = Sampler(temperature: 0, seed: 0)
            return try m.generate(prompt: prompt, maxNewTokens: 24, sampler: &sampler)
        }
        var plain = unscaled.config
        plain.ropeTheta = 10_000
        let ours = try greedy(loaded.model)
        try #require(ours != greedy(try LlamaModel(config: plain, store: unscaled.store, ledger: MemoryLedger())))
        let path = Self.path("llama-cpp-factors")
        try GGUFModel.export(loaded, to: path, type: .f32)
        #expect(try Self.llamaCppGreedy(path, prompt: prompt, count: ours.count) == ours)
    }

    /// Whether python3 runs `code` without error.
    static func python(_ code: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", code]
        (p.standardOutput, p.standardError) = (FileHandle.nullDevice, FileHandle.nullDevice)
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    @Test(
        "llama.cpp (llama-cpp-python) loads stories260K exported as F32 and decodes the same 30 greedy tokens",
        .enabled(if: SharedReal.available && llamaCpp))
    func llamaCppGreedy() throws {
        let original = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        let path = Self.path("llama-cpp")
        try GGUFModel.export(original, to: path, type: .f32)
        let prompt = "Once upon a time"
        var sampler = Sampler(temperature: 0, seed: 0)
        let ids = [1] + original.tokenizer.encode(prompt)
        let ours = try original.model.generate(prompt: ids, maxNewTokens: 30, sampler: &sampler)
        let script = """
            import json, sys
            from llama_cpp import Llama
            llm = Llama(model_path=sys.argv[1], n_ctx=128, verbose=False, n_threads=2)
            prompt = llm.tokenize(sys.argv[2].encode(), add_bos=True, special=False)
            out = []
            for t in llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0):
                if len(out) == 30: break
                out.append(t)
            print(json.dumps({"prompt": prompt, "ids": out}))
            """
        let p = Process(), out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, path, prompt]
        (p.standardOutput, p.standardError) = (out, FileHandle.nullDevice)
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
        let read = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [Int]])
        #expect(read["prompt"] == ids.map(Int.init), "the prompt's ids")
        #expect(read["ids"] == ours.map(Int.init), "llama.cpp's greedy tokens")
    }
}
