import Testing
import Datasets
import Llama
import Methods
import TensorCore
import TestSupport
@testable import Training

@Suite("Trainer")
struct TrainerTests {
    /// A tiny random model and examples whose second half repeats a pattern the model can learn.
    static func setUp(_ method: TrainingOptions.Method, clip: Double? = 1.0) throws -> Trainer {
        let c = LlamaConfig(dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let model = try LlamaModel(randomWeights: c, seed: 3, std: 0.1, ledger: MemoryLedger())
        let examples = (0..<8).map { i in
            TokenizedExample(ids: (0..<12).map { Int32(($0 * 3 + i) % 24) }, trained: (0..<12).map { $0 > 0 })
        }
        var o = TrainingOptions()
        o.method = method
        o.schedule = LRSchedule(.constant, peak: method == .sgd ? 0.1 : 1e-2, warmup: 2, total: 30)
        o.batchSize = 4
        o.maxLength = 16
        o.clipNorm = clip
        return try Trainer(model: model, examples: examples, options: o)
    }

    @Test("the loss falls over 30 steps", arguments: TrainingOptions.Method.allCases)
    func learns(method: TrainingOptions.Method) throws {
        let trainer = try Self.setUp(method, clip: method == .adamwFused ? nil : 1.0)
        let first = try trainer.runStep().loss
        var last = first
        for _ in 1..<30 { last = try trainer.runStep().loss }
        #expect(last < 0.5 * first, "\(method): \(first) → \(last)")
    }

    @Test("two runs with the same seed give the same weights, bit for bit")
    func deterministic() throws {
        let a = try Self.setUp(.adamw), b = try Self.setUp(.adamw)
        for _ in 0..<6 {
            _ = try a.runStep()
            _ = try b.runStep()
        }
        #expect(Array((a.model.store as! FP32ParameterStore).slab.buffer) == Array((b.model.store as! FP32ParameterStore).slab.buffer))
    }

    @Test("fused updates with global clipping are refused before training, naming the trade-off")
    func fusedWithClipping() throws {
        let error = try #require(throws: TrainingError.self) { try Self.setUp(.adamwFused, clip: 1.0) }
        #expect(error.message.contains("global gradient norm") && error.message.contains("use adamw"))
    }
}
