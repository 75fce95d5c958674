import Foundation
import TestSupport
import Testing
@testable import Formats
import Llama
import TensorCore

/// Each architecture against transformers: a small random checkpoint written by its own `save_pretrained`
/// (scripts/make_fixtures.py --architectures), with the reference loss, gradients, logits and greedy tokens.
@Suite("Architecture parity")
struct ArchitectureTests {
    struct Reference: Decodable {
        let inputs: [Int32], targets: [Int32], batch: Int, length: Int
        let loss: Double, logits: [Double]
        let gradients: [String: [Double]]
        let prompt: [Int32], greedy: [Int32]
    }

    static let families = [
        "qwen2", "mistral", "qwen3", "phi3", "qwen2-yarn", "phi3-longrope", "gemma", "gemma2", "gemma3",
    ]
    /// The families GGUF export writes (a sliding window, except Gemma's, is written without, with a note).
    static let ggufFamilies = ["qwen2", "qwen3", "phi3", "qwen2-yarn", "phi3-longrope", "gemma", "gemma2", "gemma3"]

    static func load(_ name: String) throws -> (LoadedModel, Reference) {
        let dir = fixtureURL("architectures/\(name)")
        let reference = try JSONDecoder().decode(
            Reference.self, from: Data(contentsOf: dir.appendingPathComponent("reference.json")))
        return (try HFDirectory.load(dir.path, ledger: MemoryLedger()), reference)
    }

    /// max |a − b| / max |b|: the error relative to the tensor's scale.
    static func relativeError(_ a: some Collection<Float>, _ b: [Double]) -> Double {
        let scale = b.map(abs).max() ?? 0
        return zip(a, b).map { abs(Double($0) - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    @Test("loss within 1e-4 and every gradient within 1e-3 of transformers'", arguments: families)
    func lossAndGradients(family: String) throws {
        let (loaded, r) = try Self.load(family)
        let model = loaded.model
        let batch = TokenBatch(batchSize: r.batch, length: r.length, inputs: r.inputs, targets: r.targets)
        let grads = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        let loss = try model.lossAndGradients(batch, into: grads)
        #expect(abs(loss.mean - r.loss) <= 1e-4 * r.loss, "\(family): loss \(loss.mean) vs \(r.loss)")
        var checked: Set<String> = []
        let stacked = FusedProjections.places(model.layout, model.config)
        for (id, info) in model.layout.parameters.enumerated() {
            // a parameter stacked in the checkpoint (Phi-3) is compared with its rows of the stacked gradient
            let name = stacked[id]?.group.name ?? info.name, first = (stacked[id]?.row ?? 0) * info.shape.last!
            let whole = try #require(r.gradients[name], "\(name) has no reference gradient")
            let expected = Array(whole[first..<first + info.count])
            let error = Self.relativeError(grads.view(id), expected)
            #expect(error <= 1e-3, "\(family) \(info.name): relative gradient error \(error)")
            checked.insert(name)
        }
        #expect(checked == Set(r.gradients.keys), "every reference tensor is a parameter")
        let logits = try model.logits(batch)
        #expect(Self.relativeError(logits, r.logits) <= 1e-4, "\(family): logits")
    }

    @Test("greedy generation equals transformers' for 20 tokens", arguments: families)
    func greedy(family: String) throws {
        let (loaded, r) = try Self.load(family)
        var sampler = Sampler(temperature: 0, seed: 0)
        #expect(try loaded.model.generate(prompt: r.prompt, maxNewTokens: 20, sampler: &sampler) == r.greedy)
    }

    @Test("export back to a Hugging Face directory reloads to the same weights and logits", arguments: families)
    func exportRoundTrip(family: String) throws {
        let (loaded, r) = try Self.load(family)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-arch-\(getpid())-\(family)")
            .path
        try? FileManager.default.removeItem(atPath: dir)
        try HFDirectory.export(loaded, to: dir)
        let again = try HFDirectory.load(dir, ledger: MemoryLedger())
        #expect(again.model.config == loaded.model.config)
        let batch = TokenBatch(batchSize: r.batch, length: r.length, inputs: r.inputs, targets: r.targets)
        #expect(try again.model.logits(batch) == loaded.model.logits(batch))
    }

    @Test("GGUF export of a sliding-window model writes no window, as llama.cpp's converter does, and says so")
    func ggufWindow() throws {
        let (loaded, r) = try Self.load("mistral")
        let window = try #require(loaded.model.config.slidingWindow), path = GGUFExportTests.path("window")
        let notes = try GGUFModel.export(loaded, to: path, type: .f32)
        #expect(notes.contains { $0.contains("without the model's sliding window") && $0.contains("\(window) tokens") })
        let again = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        #expect(again.model.config.slidingWindow == nil)
        // within the window both attend to the same keys
        let batch = TokenBatch(sequences: [Array(r.inputs.prefix(window))])
        let (a, b) = (try loaded.model.logits(batch), try again.model.logits(batch))
        #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    /// `family`'s fixture as llama.cpp's architecture of it runs it: without a sliding window (which llama.cpp does
    /// not apply to Mistral, Qwen2 or Phi-3); a Gemma with what llama.cpp fixes (``GGUFGemma``: the attention scale
    /// 1/√E, its layer pattern and local RoPE base). The weights are the fixture's.
    static func asLlamaCppRunsIt(_ family: String) throws -> LoadedModel {
        var (loaded, _) = try load(family)
        var c = loaded.model.config
        if let arch = GGUFGemma.architecture(c) {
            if c.gemma.outputNorms {
                c.gemma.queryPreAttentionScalar = Float(c.headDim)
                c.slidingLayers = GGUFGemma.slidingLayers(arch, count: c.layerCount)
            }
            if c.gemma.localRopeTheta != nil { c.gemma.localRopeTheta = GGUFGemma.localRopeTheta }
        } else {
            (c.slidingWindow, c.slidingLayers) = (nil, nil)
        }
        loaded.model = try LlamaModel(config: c, store: loaded.model.store, ledger: MemoryLedger())
        return loaded
    }

    @Test(
        """
        GGUF export of each architecture reads back to the same configuration and logits (Gemma's norms stored as \
        1 + w; Phi-3's projections stacked, its LongRoPE as factor tensors; YaRN as metadata)
        """,
        arguments: ggufFamilies)
    func ggufRoundTrip(family: String) throws {
        let loaded = try Self.asLlamaCppRunsIt(family), r = try Self.load(family).1
        let path = GGUFExportTests.path("arch-\(family)")
        try GGUFModel.export(loaded, to: path, type: .f32)
        let again = try ModelFile.load(path, tokenizer: nil, ledger: MemoryLedger())
        var expected = loaded.model.config
        if case .longRoPE(let short, let long, let original, let attention) = expected.ropeScaling {
            expected.ropeScaling = .longRoPE(
                shortFactors: short, longFactors: long, originalContextLength: original,
                attentionFactor: Double(Float(attention)))  // GGUF metadata holds it as F32
        }
        #expect(again.model.config == expected)
        let batch = TokenBatch(batchSize: r.batch, length: r.length, inputs: r.inputs, targets: r.targets)
        let (a, b) = (try again.model.logits(batch), try loaded.model.logits(batch))
        #expect(Self.relativeError(a, b.map(Double.init)) < 1e-6, "\(family): logits")
    }

    @Test(
        "gguf-py reads each architecture's export: its architecture, and only tensor names gguf-py lists for it",
        .enabled(if: GGUFExportTests.ggufPy), arguments: ggufFamilies)
    func ggufPyNames(family: String) throws {
        let loaded = try Self.asLlamaCppRunsIt(family), path = GGUFExportTests.path("arch-gguf-py-\(family)")
        try GGUFModel.export(loaded, to: path, type: .f32)
        let script = """
            import gguf, json, sys
            r = gguf.GGUFReader(sys.argv[1])
            arch = r.fields["general.architecture"].contents()
            known = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
            blocks = r.fields[arch + ".block_count"].contents()
            allowed = set()
            for t in gguf.MODEL_TENSORS[known]:
                name = gguf.TENSOR_NAMES[t]
                allowed |= {name.format(bid=b) for b in range(blocks)} if "{bid}" in name else {name}
            unknown = [t.name for t in r.tensors if t.name.rsplit(".", 1)[0] not in allowed]
            print(json.dumps({"architecture": arch, "unknown": unknown, "tensors": len(r.tensors)}))
            """
        let data = try #require(try GGUFExportTests.pythonOutput(script, [path]), "gguf-py could not read it")
        let read = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let expected = GGUFGemma.architecture(loaded.model.config) ?? family.split(separator: "-")[0].description
        #expect(read["architecture"] as? String == expected)
        #expect((read["unknown"] as? [String])?.isEmpty == true, "\(read["unknown"] ?? "")")
        #expect((read["tensors"] as? Int ?? 0) > 0)
    }

    @Test(
        "GGUF export refuses, naming why, a Gemma that llama.cpp's fixed settings would run otherwise",
        arguments: ["gemma2", "gemma3"])
    func ggufGemmaRefusal(family: String) throws {
        let (fixture, _) = try Self.load(family)  // scores scaled by 1/√6, not llama.cpp's 1/√8
        let e = try #require(throws: FormatError.self) {
            try GGUFModel.export(fixture, to: GGUFExportTests.path("refused-\(family)"), type: .f32)
        }
        #expect(e.problem.contains("query_pre_attn_scalar is 6.0") && e.fix.contains("--format hf"), "\(e)")
    }

    @Test(
        "llama.cpp (llama-cpp-python) runs the GGUF export of each architecture to our greedy tokens",
        .enabled(if: GGUFExportTests.llamaCpp), arguments: ggufFamilies)
    func llamaCppGreedy(family: String) throws {
        var loaded = try Self.asLlamaCppRunsIt(family), r = try Self.load(family).1
        let path = GGUFExportTests.path("arch-llama-cpp-\(family)")
        try GGUFModel.export(loaded, to: path, type: .f32)
        if case .longRoPE(_, let long, let original, let attention) = loaded.model.config.ropeScaling {
            // llama.cpp rounds its context up to 256 tokens, beyond the original 32, and so turns by the long factors
            // at every length: so does the model we compare with
            var c = loaded.model.config
            c.ropeScaling = .longRoPE(
                shortFactors: long, longFactors: long, originalContextLength: original, attentionFactor: attention)
            loaded.model = try LlamaModel(config: c, store: loaded.model.store, ledger: MemoryLedger())
        }
        var sampler = Sampler(temperature: 0, seed: 0)
        let ours = try loaded.model.generate(prompt: r.prompt, maxNewTokens: 20, sampler: &sampler)
        let tokens = try #require(
            try GGUFExportTests.llamaCppGreedy(path, prompt: r.prompt, count: ours.count),
            "llama.cpp could not run the export")
        #expect(tokens == ours)
    }

    static let transformers = GGUFExportTests.python("import torch, transformers")

    @Test(
        "transformers loads our export of each architecture to the reference logits", .enabled(if: transformers),
        arguments: families)
    func transformersReadsExport(family: String) throws {
        let (loaded, r) = try Self.load(family)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "leantune-arch-hf-\(getpid())-\(family)"
        )
        .path
        try? FileManager.default.removeItem(atPath: dir)
        try HFDirectory.export(loaded, to: dir)
        let script = """
            import json, sys, torch, transformers
            model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float64)
            inputs = torch.tensor(json.loads(sys.argv[2])).reshape(int(sys.argv[3]), -1)
            print(json.dumps(model(input_ids=inputs).logits.flatten().tolist()))
            """
        let data = try #require(
            try GGUFExportTests.pythonOutput(script, [dir, "\(r.inputs)", "\(r.batch)"]),
            "transformers could not load the export")
        let logits = try #require(try JSONSerialization.jsonObject(with: data) as? [Double])
        #expect(logits.count == r.logits.count)
        #expect(Self.relativeError(logits.map(Float.init), r.logits) <= 1e-5, "\(family): transformers on our export")
    }
}
