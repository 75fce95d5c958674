import Testing
import Llama
import TensorCore
@testable import Methods

@Suite("LSP-Offload")
struct LSPOffloadTests {
    /// Every block matrix 16×16, so identity projectors with d = 16 are the full space.
    static let config = LlamaConfig(
        dim: 16, ffnDim: 16, layerCount: 2, headCount: 4, kvHeadCount: 4, vocabSize: 24, maxSequenceLength: 16)

    static func batch(_ seed: Int) -> TokenBatch {
        TokenBatch(sequences: (0..<3).map { s in (0..<9).map { Int32(($0 * 5 + s * 7 + seed * 3) % 24) } })
    }

    static func method(_ model: LlamaModel, _ settings: LSPOffload.Settings) throws -> LSPOffload {
        try LSPOffload(
            layout: model.layout, settings: settings, groups: ParameterGroups(weightDecay: 0), seed: 1,
            ledger: model.ledger)
    }

    /// `steps` steps on ``batch(_:)``; with `heldOut`, projector fits score held-out batch k as `batch(10 + k)`.
    static func run(_ method: LSPOffload, _ model: LlamaModel, steps: Int, heldOut: Bool = false) throws {
        var guardian = NonFiniteGuard()
        for step in 1...steps {
            let batch = Self.batch(step)
            _ = try method.step(
                model,
                inputs: StepInputs(
                    batches: [batch], objective: { try model.loss(batch) },
                    auxiliaryObjective: { _ in try model.loss(batch) },
                    auxiliaryBatch: heldOut ? { Self.batch(10 + $0) } : nil),
                learningRate: 1e-2, step: step, nonFinite: &guardian)
        }
    }

    static func weights(_ model: LlamaModel) -> [Float] {
        model.layout.parameters.indices.flatMap { id in model.store.withFloats(id) { Array($0) } }
    }

    @Test(
        "with d = full size and identity projectors the method is Adam on every block matrix (and AdamW on the norms)")
    func identityIsAdam() throws {
        let lsp = try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())
        let reference = try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())
        var settings = LSPOffload.Settings()
        (settings.size, settings.nonzeros) = (16, 1)
        let method = try Self.method(lsp, settings)
        for pair in method.sketches {
            for s in [pair.left, pair.right] {
                for i in 0..<16 { (s.indices.pointer[i], s.values.pointer[i]) = (Int32(i), 1) }
            }
        }
        try Self.run(method, lsp, steps: 3)
        // Reference: the full gradient, the host's Adam (ε inside √) on the matrices, AdamW on the norms; embeddings
        // frozen.
        let layout = reference.layout
        let matrixMoments = layout.parameters.map { [Float](repeating: 0, count: 2 * $0.count) }
        var moments = matrixMoments
        for step in 1...3 {
            let g = GradientSlab(layout: layout, ledger: MemoryLedger())
            _ = try reference.lossAndGradients(Self.batch(step), into: g)
            for (id, info) in layout.parameters.enumerated() {
                let grad = g.view(id), n = info.count
                let isMatrix = info.role.isBlockMatrix
                guard isMatrix || info.role.kind == .scale else { continue }
                let (b1, b2, eps): (Float, Float, Float) = isMatrix ? (0.9, 0.999, 1e-4) : (0.9, 0.999, 1e-8)
                let c1 = 1 / (1 - Float.pow(b1, step)), c2 = 1 / (1 - Float.pow(b2, step))
                reference.store.update(id) { w in
                    for k in 0..<n {
                        let m = b1 * moments[id][k] + (1 - b1) * grad[k],
                            v = b2 * moments[id][n + k] + (1 - b2) * grad[k] * grad[k]
                        (moments[id][k], moments[id][n + k]) = (m, v)
                        w[k] -=
                            isMatrix
                            ? 1e-2 * (m * c1) / (v * c2 + eps).squareRoot()
                            : 1e-2 * (m * c1) / ((v * c2).squareRoot() + eps)
                    }
                }
            }
        }
        let (a, b) = (Self.weights(lsp), Self.weights(reference))
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y))) }
        #expect(
            a != Self.weights(try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())))
    }

    @Test("both schedules and both compressions make the same steps; the report counts d² floats each way per matrix")
    func schedulesAgree() throws {
        var results: [[Float]] = []
        for (schedule, compression) in [
            (LSPOffload.Settings.Schedule.layerwise, LSPOffload.Settings.Compression.factors),
            (.afterBackward, .factors), (.layerwise, .gradient),
        ] {
            let model = try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())
            var settings = LSPOffload.Settings()
            (settings.size, settings.nonzeros, settings.schedule, settings.compression) = (8, 2, schedule, compression)
            let method = try Self.method(model, settings)
            try Self.run(method, model, steps: 2)
            results.append(Self.weights(model))
            #expect(
                method.report["bytes_to_host"] == Double(method.matrices.count * 8 * 8 * 4)
                    && method.report["bytes_to_compute"] == method.report["bytes_to_host"])
            #expect(method.matrices.count == 7 * 2)
        }
        #expect(results[0] == results[1])  // the order of the host's work changes nothing
        // factors vs gradient: rounding only
        for (x, y) in zip(results[0], results[2]) { #expect(abs(x - y) <= 1e-5 * max(1, abs(x))) }
    }

    @Test("fitted projectors reconstruct a held-out gradient of a tiny model better than their random init")
    func learnedBeatRandom() throws {
        let c = LlamaConfig(
            dim: 32, ffnDim: 48, layerCount: 1, headCount: 4, kvHeadCount: 4, vocabSize: 24, maxSequenceLength: 16)
        let model = try LlamaModel(randomWeights: c, seed: 3, std: 0.2, ledger: MemoryLedger()), ledger = MemoryLedger()
        let id = model.layout.layers[0].up
        func gradient(_ seed: Int) throws -> [Float] {
            let g = GradientSlab(layout: model.layout, ledger: ledger)
            _ = try model.lossAndGradients(Self.batch(seed), into: g)
            return Array(g.view(id))
        }
        let (train, heldOut) = (try gradient(1), try gradient(2))
        let rng = Philox(seed: 7),
            pair = SketchPair(
                left: CountSketch(count: 48, size: 8, nonzeros: 2, generator: rng, stream: 0, ledger: ledger),
                right: CountSketch(count: 32, size: 8, nonzeros: 2, generator: rng, stream: 9, ledger: ledger))
        let before = (
            ProjectorFit.error(pair, train, ledger: ledger), ProjectorFit.error(pair, heldOut, ledger: ledger)
        )
        #expect(ProjectorFit.fit(pair, train, iterations: 100, learningRate: 0.05, ledger: ledger))
        let after = (ProjectorFit.error(pair, train, ledger: ledger), ProjectorFit.error(pair, heldOut, ledger: ledger))
        #expect(
            after.0 < 0.9 * before.0 && after.1 < before.1,
            "train \(before.0) → \(after.0), held out \(before.1) → \(after.1)")
    }

    @Test("a step that refits runs the fit, moves the host moments into the new space and reports the errors")
    func refitInAStep() throws {
        let model = try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())
        var settings = LSPOffload.Settings()
        (settings.size, settings.nonzeros, settings.checkFrequency, settings.refitThreshold) = (8, 2, 2, 0)
        let method = try Self.method(model, settings)
        try Self.run(method, model, steps: 3, heldOut: true)
        #expect(method.fits == 1 && method.failedFits == 0)
        let (e0, e1) = (
            try #require(method.report["projector_error"]), try #require(method.report["projector_error_after_fit"])
        )
        #expect(e1 < e0, "\(e0) → \(e1)")
        #expect(
            method.host.m.allSatisfy { $0.buffer.allSatisfy(\.isFinite) }
                && method.host.v.allSatisfy { $0.buffer.allSatisfy { $0.isFinite && $0 >= 0 } })
    }

    @Test("a fit that makes the projector values non-finite keeps the old projectors and is counted")
    func failedFit() throws {
        let model = try LlamaModel(randomWeights: Self.config, seed: 2, std: 0.2, ledger: MemoryLedger())
        var settings = LSPOffload.Settings()
        (settings.size, settings.nonzeros, settings.checkFrequency, settings.refitThreshold) = (8, 2, 2, 0)
        // the first Adam step reaches ±3.4e38, the next error overflows
        settings.fitLearningRate = .greatestFiniteMagnitude
        let method = try Self.method(model, settings)
        let before = method.sketches.map { (Array($0.left.values.buffer), Array($0.right.values.buffer)) }
        try Self.run(method, model, steps: 3, heldOut: true)
        #expect(method.fits == 1 && method.failedFits == method.matrices.count)
        for (pair, old) in zip(method.sketches, before) {
            #expect(Array(pair.left.values.buffer) == old.0 && Array(pair.right.values.buffer) == old.1)
        }
        #expect(Self.weights(model).allSatisfy { $0.isFinite })
    }

    @Test("a stopped host worker is a clear error for both schedules, not a hang")
    func stoppedHost() throws {
        for schedule in LSPOffload.Settings.Schedule.allCases {
            let model = try LlamaModel(randomWeights: Self.config, seed: 2, ledger: MemoryLedger())
            var settings = LSPOffload.Settings()
            (settings.size, settings.nonzeros, settings.checkFrequency, settings.schedule) = (8, 2, 0, schedule)
            let method = try Self.method(model, settings)
            try Self.run(method, model, steps: 1)
            method.host.stop()
            let error = try #require(throws: MethodError.self) { try Self.run(method, model, steps: 1) }
            #expect(error.message.contains("host worker has stopped"), "\(schedule): \(error.message)")
        }
    }

    @Test("the host answers a non-finite gradient without touching its moments, and a silent host times out")
    func hostFailures() throws {
        let ledger = MemoryLedger()
        let worker = HostWorker(
            matrices: 1, size: 2, beta1: 0.9, beta2: 0.999, epsilon: 1e-4, queueCapacity: 1, timeout: 0.05,
            ledger: ledger)
        func message(_ values: [Float]) -> HostWorker.Message {
            let b = AlignedBuffer<Float>(count: 4, category: .gradients, ledger: ledger)
            _ = b.buffer.update(from: values)
            return HostWorker.Message(matrix: 0, buffer: b, learningRate: 0.1)
        }
        try worker.send(message([1, 2, 3, 4]))
        let silent = try #require(throws: MethodError.self) { try worker.receive() }  // not started: nobody answers
        #expect(silent.message.contains("has not answered for 0.05 s"))
        worker.start()
        let first = try worker.receive()
        #expect(first.applied)
        let moments = (Array(worker.m[0].buffer), Array(worker.v[0].buffer), worker.steps.pointer[0])
        try worker.send(message([1, .nan, 3, 4]))
        let second = try worker.receive()
        #expect(!second.applied)
        #expect(
            Array(worker.m[0].buffer) == moments.0 && Array(worker.v[0].buffer) == moments.1
                && worker.steps.pointer[0] == moments.2)
        worker.stop()
    }

    @Test(
        """
        the host holds Σ 8·d² of moments; the compute side's state is the projectors' indices and values and the \
        norms' AdamW
        """
    )
    func memorySplit() throws {
        let ledger = MemoryLedger()
        let model = try LlamaModel(randomWeights: Self.config, seed: 2, ledger: ledger)
        var settings = LSPOffload.Settings()
        (settings.size, settings.nonzeros) = (8, 2)
        let before = ledger.snapshot().current
        let method = try Self.method(model, settings)
        let after = ledger.snapshot().current
        let matrices = model.layout.parameters.filter { $0.role.isBlockMatrix }
        let norms = model.layout.parameters.filter { $0.role.kind == .scale }.reduce(0) { $0 + $1.count }
        #expect(method.matrices.count == matrices.count)
        // M, V and a step count each
        #expect(after[.host, default: 0] - before[.host, default: 0] == matrices.count * (8 * 8 * 8 + 4))
        #expect(
            after[.optimizerState, default: 0] - before[.optimizerState, default: 0]
                == matrices.reduce(0) { $0 + 8 * 2 * ($1.shape[0] + $1.shape[1]) } + 8 * norms)
        // nothing allocated for gradients up front
        #expect(after[.gradients, default: 0] == before[.gradients, default: 0])
    }

    @Test("d or r out of range for a matrix is refused")
    func badSettings() throws {
        let model = try LlamaModel(randomWeights: Self.config, seed: 2, ledger: MemoryLedger())
        for (d, r) in [(17, 1), (8, 9), (8, 0)] {
            var s = LSPOffload.Settings()
            (s.size, s.nonzeros) = (d, r)
            #expect(throws: MethodError.self, "d \(d), r \(r)") { try Self.method(model, s) }
        }
    }
}
