import Foundation
import Testing
import Llama
import Methods
import Datasets
import TensorCore
@testable import Training

/// The registry is the one list of methods: every part of LeanTune that names a method reads it.
@Suite("Method registry")
struct MethodRegistryTests {
    static let names = MethodRegistry.all.map { $0.name }

    @Test("names are unique, and --method, the catalog and checkpoints all know every one")
    func names() throws {
        #expect(Set(Self.names).count == Self.names.count)
        #expect(TrainingOptions.Method.allCases.map(\.rawValue) == Self.names)
        #expect(MethodCatalog.entries.map(\.label) == Self.names)
        for name in Self.names {
            let method = try #require(TrainingOptions.Method(rawValue: name))
            let json = try JSONEncoder().encode([method])  // the form trainer.json has always kept: the name
            #expect(String(decoding: json, as: UTF8.self) == "[\"\(name)\"]")
            #expect(try JSONDecoder().decode([TrainingOptions.Method].self, from: json) == [method])
        }
        #expect(TrainingOptions.Method(rawValue: "adam") == nil)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([TrainingOptions.Method].self, from: Data("[\"adam\"]".utf8))
        }
    }

    @Test("each method's settings go into the options and come back unchanged, defaults and changed values alike")
    func settingsRoundTrip() throws {
        for d in MethodRegistry.all {
            func check<D: MethodDefinition>(_ d: D.Type) throws {
                var o = TrainingOptions()
                o.method = TrainingOptions.Method(d)
                try d.apply(d.defaults, to: &o)
                #expect(d.settings(of: o) == d.defaults, "\(d.name)")
                #expect(try d.settings(d.mapping(d.defaults)) == d.defaults, "\(d.name): through YAML")
            }
            try check(d)
        }
        let changed = try RunConfig.resolve(
            yaml: nil,
            overrides: ["method.name=adarankgrad", "method.rank=16", "method.min_rank=2", "method.capture=0.3"]
        ).trainingOptions()
        #expect(
            changed.lowRank.policy
                == .adaptive(minRank: 2, maxRank: 16, energy: 0.9, capture: 0.3, minInterval: 10, maxInterval: 200))
        #expect(AdaRankGradDefinition.settings(of: changed).rank == 16)
    }

    @Test("a key several methods read has one type in all of them")
    func sharedKeys() throws {
        var types: [String: (method: String, type: String)] = [:]
        for d in MethodRegistry.all {
            func mapping<D: MethodDefinition>(_ d: D.Type) throws -> [String: RunConfig.Value] {
                try d.mapping(d.defaults)
            }
            for (key, value) in try mapping(d) {
                let type = RunConfig.typeName(value)
                if let seen = types[key] { #expect(seen.type == type, "method.\(key): \(seen.method) vs \(d.name)") }
                types[key] = (d.name, type)
            }
            #expect(!d.summary.isEmpty && d.settingKeys.allSatisfy { RunConfig.defaults["method"]?[$0] == nil })
        }
        #expect(RunConfig.methodKeys == Set(types.keys))
    }

    @Test(
        "every catalog entry makes valid options, a memory plan and a step that moves q/k/v biases and q/k norms")
    func catalog() throws {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32,
            attentionBias: true, explicitHeadDim: 8, queryKeyNorm: true)
        for entry in MethodCatalog.entries {
            var o = try RunConfig.resolve(yaml: nil, overrides: entry.settings + ["train.seq=16"]).trainingOptions()
            (o.lowRank.policy, o.lsp.size) = (
                o.method == .adarankgrad ? .adaRankGrad(maxRank: 4) : .fixed(rank: 4, interval: 5), 16
            )
            #expect(o.method.rawValue == entry.label)
            let plan = MemoryPlan.estimate(c, options: o, threads: 1)
            #expect(plan[.weights, default: 0] + plan[.optimizerState, default: 0] > 0, "\(entry.label)")
            let model = try Trainer.model(
                try LlamaModel(randomWeights: c, seed: 1, std: 0.1, ledger: MemoryLedger()), for: o)
            let trainer = try Trainer(
                model: model,
                examples: (0..<8).map { i in
                    .init(ids: (0..<12).map { Int32(($0 + i) % 24) }, trained: (0..<12).map { $0 > 0 })
                }, options: o)
            let layer = model.layout.layers[0]
            let added = [try #require(layer.queryBias), try #require(layer.queryNorm), try #require(layer.keyNorm)]
            let before = added.map { id in model.store.withFloats(id) { Array($0) } }
            #expect(try trainer.runStep().loss.isFinite, "\(entry.label)")
            for (id, values) in zip(added, before) {
                let name = model.layout.parameters[id].name
                #expect(model.store.withFloats(id) { Array($0) } != values, "\(entry.label): \(name) did not move")
            }
        }
    }

    @Test("a method: key is refused where the method does not read it, with who does; typos and types are named")
    func refusals() throws {
        func message(_ overrides: [String]) -> String {
            do {
                _ = try RunConfig.resolve(yaml: nil, overrides: overrides).trainingOptions()
                return "accepted"
            } catch { return "\(error)" }
        }
        #expect(
            message(["method.name=adamw", "method.rank=64"])
                == """
                method.rank does not apply to adamw; it is a setting of galore, adarankgrad. Remove it, or choose \
                that method
                """
        )
        #expect(
            message(["method.name=mezo", "method.projected=kv"]).hasPrefix("method.projected does not apply to mezo"))
        #expect(message(["method.name=galore", "method.rnak=64"]).contains("did you mean 'method.rank'?"))
        #expect(message(["method.name=galore", "method.rank=many"]) == "'method.rank' must be an integer, got many")
        #expect(
            message(["method.name=galore", "method.transfer_moments=3"])
                == "'method.transfer_moments' must be true or false, got 3")
        #expect(
            message(["method.name=mezo", "method.checkpointing=true"]).hasPrefix(
                "method.checkpointing does not apply to mezo"))
        #expect(
            message(["method.name=qft", "method.fused=true", "optimizer.clip=0"])
                == "method.fused does not apply to qft")
        #expect(message(["method.name=galore", "method.rank=64", "method.scale=1"]) == "accepted")
        // Methods name their own settings; the configuration layer gives the key path.
        #expect(
            message(["method.name=adarankgrad", "method.min_rank=0"])
                == "method.min_rank must be in 1...the largest rank (128), got 0")
        #expect(message(["method.name=galore", "method.update_interval=0"]).hasPrefix("method.update_interval (T) "))
        #expect(
            message(["method.name=lsp-offload", "method.fit_lr=0", "optimizer.clip=0"])
                == "method.fit_lr must be > 0, got 0.0")
        #expect(
            message(["method.name=qft", "method.weight_block=-1", "optimizer.clip=0"]).hasPrefix("method.weight_block ")
        )
        #expect(
            message(["method.name=qft", "method.outlier_refresh=-1", "optimizer.clip=0"]).hasPrefix(
                "method.outlier_refresh "))
        #expect(
            message(["method.name=qft", "method.state_block=0", "optimizer.clip=0"]).hasPrefix("method.state_block "))
        // A run's file planned with another method keeps only the keys that method reads.
        let file = try RunConfig.resolve(yaml: nil, overrides: ["method.name=galore", "method.rank=16"])
        var other = file
        try other.set("method.name", yamlValue: "adamw", source: "test")
        #expect(throws: TrainingError.self) { try other.trainingOptions() }
        #expect(try other.withoutForeignMethodKeys().trainingOptions().method == .adamw)
    }

    @Test("shared overrides of bench methods reach only the methods that read them")
    func applicable() {
        let entries = MethodCatalog.entries
        let galore = entries.first { $0.label == "galore" }!, adamw = entries.first { $0.label == "adamw" }!
        let sets = ["method.rank=64", "optimizer.lr=1e-3", "method.checkpointing=true"]
        #expect(galore.applicable(sets) == sets)
        #expect(adamw.applicable(sets) == ["optimizer.lr=1e-3", "method.checkpointing=true"])
    }
}
