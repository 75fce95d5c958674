import Foundation
import Testing
import Llama
@testable import Methods
import TensorCore
import TestSupport

/// Losses of 10 steps of AdamW, Lion, SGD and Adam-mini from scripts/make_fixtures.py (torch.optim.AdamW,
/// lion_pytorch.Lion, torch.optim.SGD, and the script's float64 Adam-mini; norms without weight decay).
struct OptimizerTrajectories: Decodable {
    struct Run: Decodable {
        let hyperparameters: [String: Hyper]
        let losses: [Double]
    }
    enum Hyper: Decodable {
        case number(Float), pair([Float])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Float.self) { self = .number(v) } else { self = .pair(try c.decode([Float].self)) }
        }
        var number: Float { if case .number(let v) = self { v } else { .nan } }
        var pair: [Float] { if case .pair(let v) = self { v } else { [] } }
    }

    static func load() throws -> [String: [String: Run]] {
        try JSONDecoder().decode(
            [String: [String: Run]].self, from: Data(contentsOf: fixtureURL("optimizer-steps.json")))
    }
}

func makeOptimizer(
    _ name: String, _ h: [String: OptimizerTrajectories.Hyper], _ layout: ParameterLayout, headDimension: Int = 4
) -> any Optimizer {
    let decay = ParameterGroups(weightDecay: h["weight_decay"]!.number)
    switch name {
    case "adam-mini":
        return AdamMini(
            layout: layout, headDimension: headDimension, beta1: h["betas"]!.pair[0], beta2: h["betas"]!.pair[1],
            epsilon: h["eps"]!.number, groups: decay, ledger: MemoryLedger())
    case "adamw":
        return AdamW(
            layout: layout, beta1: h["betas"]!.pair[0], beta2: h["betas"]!.pair[1], epsilon: h["eps"]!.number,
            groups: decay, ledger: MemoryLedger())
    case "lion":
        return Lion(
            layout: layout, beta1: h["betas"]!.pair[0], beta2: h["betas"]!.pair[1], groups: decay,
            ledger: MemoryLedger())
    default:
        return SGD(layout: layout, momentum: h["momentum"]!.number, groups: decay, ledger: MemoryLedger())
    }
}

@Suite("Optimizers")
struct OptimizerTests {
    static let optimizers = ["adamw", "lion", "sgd", "adam-mini"]
    static let cases = PyTorchFixture.names.flatMap { n in optimizers.map { (n, $0) } }

    @Test("10 steps give PyTorch's losses within 1e-4 relative", arguments: 0..<8)
    func parity(index: Int) throws {
        let (model, optimizerName) = Self.cases[index]
        let run = try #require(try OptimizerTrajectories.load()[model]?[optimizerName])
        let fixture = try PyTorchFixture.load(model)
        let store = fixture.store()
        let m = try LlamaModel(config: fixture.llamaConfig, store: store, ledger: MemoryLedger())
        let optimizer = makeOptimizer(
            optimizerName, run.hyperparameters, m.layout, headDimension: fixture.llamaConfig.headDim)
        let lr = run.hyperparameters["lr"]!.number
        for (step, expected) in run.losses.enumerated() {
            let grads = GradientSlab(layout: m.layout, ledger: MemoryLedger())
            let loss = try m.lossAndGradients(fixture.batch, into: grads)
            #expect(
                abs(loss.mean - expected) <= 1e-4 * expected,
                "\(model) \(optimizerName) step \(step + 1): \(loss.mean) vs PyTorch \(expected)")
            optimizer.step(store, gradients: grads, learningRate: lr, step: step + 1)
        }
    }

    @Test("fused updates inside backward equal accumulate-then-step, bit for bit", arguments: optimizers)
    func fusedEqualsAccumulated(optimizerName: String) throws {
        let run = try #require(try OptimizerTrajectories.load()[PyTorchFixture.names[1]]?[optimizerName])
        let fixture = try PyTorchFixture.load(PyTorchFixture.names[1])  // tied embeddings: the hardest case for fusion
        let (a, b) = (fixture.store(), fixture.store())
        let ma = try LlamaModel(config: fixture.llamaConfig, store: a, ledger: MemoryLedger())
        let mb = try LlamaModel(config: fixture.llamaConfig, store: b, ledger: MemoryLedger())
        let head = fixture.llamaConfig.headDim
        let oa = makeOptimizer(optimizerName, run.hyperparameters, ma.layout, headDimension: head),
            ob = makeOptimizer(optimizerName, run.hyperparameters, mb.layout, headDimension: head)
        let sink = FusedUpdateSink(optimizer: ob, store: b, ledger: MemoryLedger())
        sink.learningRate = run.hyperparameters["lr"]!.number
        for step in 1...5 {
            let grads = GradientSlab(layout: ma.layout, ledger: MemoryLedger())
            _ = try ma.lossAndGradients(fixture.batch, into: grads)
            oa.step(a, gradients: grads, learningRate: sink.learningRate, step: step)
            sink.step = step
            _ = try mb.lossAndGradients(fixture.batch, into: sink, checkpointing: true)
        }
        #expect(Array(a.slab.buffer) == Array(b.slab.buffer))
    }

    @Test("AdamW keeps 8 bytes of state per parameter, Lion 4, SGD with momentum 4, SGD without none")
    func stateBytes() {
        let layout = ParameterLayout(TinyShape.config)
        func stateBytes(_ make: (MemoryLedger) -> any Optimizer) -> Int {
            let ledger = MemoryLedger()
            let optimizer = make(ledger)
            defer { withExtendedLifetime(optimizer) {} }
            return ledger.snapshot().current[.optimizerState] ?? 0
        }
        #expect(stateBytes { AdamW(layout: layout, ledger: $0) } == 8 * layout.totalCount)
        #expect(stateBytes { Lion(layout: layout, ledger: $0) } == 4 * layout.totalCount)
        #expect(stateBytes { SGD(layout: layout, momentum: 0.9, ledger: $0) } == 4 * layout.totalCount)
        #expect(stateBytes { SGD(layout: layout, momentum: 0, ledger: $0) } == 0)
    }

    @Test("Adam-mini: one second moment per token row, q/k head, output row, and per value and norm tensor")
    func adamMiniBlocks() {
        let c = TinyShape.config, layout = ParameterLayout(c), head = c.headDim
        let expected =
            c.vocabSize + c.layerCount * (c.headCount + c.kvHeadCount + 1 + c.dim + 2 * c.ffnDim + c.dim + 2) + 1
        #expect(AdamMini.blockCount(layout, headDimension: head, groups: ParameterGroups(weightDecay: 0)) == expected)
        let ledger = MemoryLedger()
        let adamMini = AdamMini(layout: layout, headDimension: head, ledger: ledger)
        #expect(adamMini.v.count == expected && adamMini.m.count == layout.totalCount)
        #expect(ledger.snapshot().current[.optimizerState] == 4 * (layout.totalCount + expected))
        for info in layout.parameters { #expect(info.count % AdamMini.blockSize(info, headDimension: head) == 0) }
    }

    @Test("Adam-mini with blocks of one weight is Adam (AdamW's update to rounding)")
    func adamMiniOfSingletons() throws {
        let fixture = try PyTorchFixture.load(PyTorchFixture.names[0])
        let (a, b) = (fixture.store(), fixture.store())
        let model = try LlamaModel(config: fixture.llamaConfig, store: a, ledger: MemoryLedger())
        let groups = ParameterGroups(weightDecay: 0.1)
        let adamw = AdamW(layout: model.layout, groups: groups, ledger: MemoryLedger())
        let mini = AdamMini(
            layout: model.layout, headDimension: 4, groups: groups, ledger: MemoryLedger(), blockSize: { _ in 1 })
        let grads = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        _ = try model.lossAndGradients(fixture.batch, into: grads)
        for step in 1...3 {
            adamw.step(a, gradients: grads, learningRate: 1e-2, step: step)
            mini.step(b, gradients: grads, learningRate: 1e-2, step: step)
        }
        let worst = zip(a.slab.buffer, b.slab.buffer).map { abs($0 - $1) / max(abs($0), 1e-3) }.max() ?? 0
        #expect(worst < 1e-5, "largest relative difference \(worst)")
        #expect(a.slab.buffer.contains { $0 != 0 })
    }
}

enum TinyShape {
    static let config = LlamaConfig(
        dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 8)
}
