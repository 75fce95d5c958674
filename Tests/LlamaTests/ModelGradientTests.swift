import Testing
@testable import Llama
import TensorCore

@Suite("Whole-model backward matches finite differences of the Double reference")
struct ModelGradientTests {
    static let cases: [(LlamaConfig, Bool)] = TinyConfigs.all.flatMap { c in [(c, false), (c, true)] }

    @Test("every parameter's gradient", arguments: cases.indices)
    func gradients(caseIndex: Int) throws {
        let (c, checkpointing) = Self.cases[caseIndex]
        let model = try TinyConfigs.model(c)
        let store = model.store as! FP32ParameterStore
        let batch = TinyConfigs.batch(c)
        let grads = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        let loss = try model.lossAndGradients(batch, into: grads, checkpointing: checkpointing)
        let w = store.doubles
        let referenceLoss = Reference.meanLoss(c, w, batch)
        #expect(abs(loss.mean - referenceLoss) < 1e-5 * referenceLoss)

        for (id, info) in model.layout.parameters.enumerated() {
            // Up to 12 elements per tensor, spread over the tensor.
            let picks = Array(Set((0..<12).map { $0 * info.count / 12 })).sorted()
            let analytic = picks.map { Double(grads.view(id)[$0]) }
            let numeric = picks.map { finiteDifference(w, info.offset + $0) { Reference.meanLoss(c, $0, batch) } }
            let error = relativeError(analytic, numeric, floor: 1e-6)
            #expect(error < 1e-4, "\(info.name): relative error \(error) (checkpointing \(checkpointing))")
        }
    }

    @Test("checkpointing changes memory, not results: identical loss and gradients", arguments: TinyConfigs.all.indices)
    func checkpointingIsExact(index: Int) throws {
        let c = TinyConfigs.all[index]
        let model = try TinyConfigs.model(c), batch = TinyConfigs.batch(c)
        let plain = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        let checkpointed = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        let a = try model.lossAndGradients(batch, into: plain, checkpointing: false)
        let b = try model.lossAndGradients(batch, into: checkpointed, checkpointing: true)
        #expect(a == b)
        #expect(Array(plain.slab.buffer) == Array(checkpointed.slab.buffer))
    }

    @Test("the forward-only loss equals the training pass's loss", arguments: TinyConfigs.all.indices)
    func forwardOnlyLoss(index: Int) throws {
        let c = TinyConfigs.all[index]
        let model = try TinyConfigs.model(c), batch = TinyConfigs.batch(c)
        let forwardOnly = try model.loss(batch)
        let training = try model.lossAndGradients(
            batch, into: GradientSlab(layout: model.layout, ledger: MemoryLedger()))
        #expect(forwardOnly == training)
        let reference = Reference.logits(c, (model.store as! FP32ParameterStore).doubles, batch)
        #expect(relativeError(try model.logits(batch).map(Double.init), reference) < 1e-5)
    }

    @Test("gradients accumulate across backward passes until zeroed")
    func accumulation() throws {
        let c = TinyConfigs.gqaUntiedRotateHalf
        let model = try TinyConfigs.model(c), batch = TinyConfigs.batch(c)
        let once = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        let twice = GradientSlab(layout: model.layout, ledger: MemoryLedger())
        _ = try model.lossAndGradients(batch, into: once)
        _ = try model.lossAndGradients(batch, into: twice)
        _ = try model.lossAndGradients(batch, into: twice)
        #expect(zip(once.slab.buffer, twice.slab.buffer).allSatisfy { abs(2 * $0 - $1) <= 1e-6 * max(1, abs($1)) })
    }
}

/// A sink that applies SGD as each gradient is finished and drops it: the fused-update seam.
final class FusedSGDSink: GradientSink {
    let store: FP32ParameterStore
    let learningRate: Float
    var buffers: [ParameterID: [Float]] = [:]
    var order: [ParameterID] = []

    init(store: FP32ParameterStore, learningRate: Float) {
        self.store = store
        self.learningRate = learningRate
    }

    func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> {
        if buffers[id] == nil { buffers[id] = [Float](repeating: 0, count: store.layout.parameters[id].count) }
        return buffers[id]!.withUnsafeMutableBufferPointer { $0.baseAddress! }
    }

    func finish(_ id: ParameterID) {
        order.append(id)
        let g = buffers.removeValue(forKey: id)!
        store.update(id) { w in for i in w.indices { w[i] -= learningRate * g[i] } }
    }
}

@Suite("Gradient sinks")
struct GradientSinkTests {
    @Test(
        "a fused sink that updates weights inside backward equals update-after-backward",
        arguments: TinyConfigs.all.indices)
    func fusedEqualsAccumulated(index: Int) throws {
        let c = TinyConfigs.all[index]
        let fusedModel = try TinyConfigs.model(c), plainModel = try TinyConfigs.model(c), batch = TinyConfigs.batch(c)
        let fusedStore = fusedModel.store as! FP32ParameterStore, plainStore = plainModel.store as! FP32ParameterStore
        let sink = FusedSGDSink(store: fusedStore, learningRate: 0.1)
        _ = try fusedModel.lossAndGradients(batch, into: sink, checkpointing: true)

        let grads = GradientSlab(layout: plainModel.layout, ledger: MemoryLedger())
        _ = try plainModel.lossAndGradients(batch, into: grads)
        for i in 0..<plainStore.slab.count { plainStore.slab.pointer[i] -= 0.1 * grads.slab.pointer[i] }

        #expect(Array(fusedStore.slab.buffer) == Array(plainStore.slab.buffer))
        #expect(sink.buffers.isEmpty)
        // Every parameter finished once: head (if untied) and final norm first, then layers in reverse, embedding last.
        let layout = fusedModel.layout
        let expected =
            (c.tiedEmbeddings ? [] : [layout.head]) + [layout.finalNorm]
            + layout.layers.reversed().flatMap(\.all) + [layout.embedding]
        #expect(sink.order == expected)
    }
}

@Suite("The memory plan is what a pass allocates")
struct PassMemoryTests {
    @Test(
        "every architecture's passes allocate the planned activations and at most the planned workspace",
        arguments: TinyConfigs.all.indices)
    func planMatchesLedger(index: Int) throws {
        let c = TinyConfigs.all[index], batch = TinyConfigs.batch(c)
        for checkpointing in [nil, false, true] as [Bool?] {
            let ledger = MemoryLedger()
            let model = try LlamaModel(config: c, store: try TinyConfigs.model(c).store, ledger: ledger)
            if let checkpointing {
                let grads = GradientSlab(layout: model.layout, ledger: MemoryLedger())
                _ = try model.lossAndGradients(batch, into: grads, checkpointing: checkpointing)
            } else {
                _ = try model.loss(batch)
            }
            let plan = LlamaModel.passMemory(c, batch: batch.batchSize, length: batch.length, training: checkpointing)
            let seen = ledger.snapshot().peak, label = "checkpointing \(String(describing: checkpointing))"
            #expect(seen[.activations] == plan[.activations], "\(label)")
            // the plan counts one attention scratch per thread; tasks that do not overlap in time share the peak
            let shape = AttentionShape(
                batch: batch.batchSize, queries: batch.length, keys: batch.length, heads: c.headCount,
                kvHeads: c.kvHeadCount, headDim: c.headDim, queryOffset: 0, softcap: c.gemma.attentionSoftcap)
            let perTask = 4 * shape.scratchMatrices(backward: checkpointing != nil) * batch.length * batch.length
            let tasks = min(Parallel.threadCount, batch.batchSize * c.kvHeadCount)
            let workspace = (seen[.workspace] ?? 0, plan[.workspace] ?? 0)
            #expect(workspace.0 <= workspace.1 && workspace.0 >= workspace.1 - (tasks - 1) * perTask, "\(label)")
        }
    }
}
