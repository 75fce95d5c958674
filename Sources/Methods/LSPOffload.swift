import Llama
import TensorCore

/// LSP-Offload (Chen et al., AAAI 2025): each block matrix W (m×n) trains in the space of a pair of (d, r)-sparse
/// projectors P, Q. Backward compresses its gradient to Ĝ = Pᵀ·G·Q (d×d), the ``HostWorker`` runs Adam on it, and the
/// step comes back as W += P·Δ·Qᵀ. No full gradient and no optimizer state of the matrices exist on the compute side.
/// Norms train with AdamW on the compute side; embeddings and the head are frozen unless `trainEmbeddings`.
///
/// Schedules: `layerwise` sends each matrix's Ĝ as soon as backward has finished it, so the host works while backward
/// goes on through the earlier layers and only the last matrices' host work is on the critical path; `afterBackward`
/// sends everything when backward is done and applies the steps once the host has made all of them (ZeRO-Offload's
/// order). Every Δ lands before the next step's forward, so weights are never stale.
public final class LSPOffload: FineTuningMethod {
    public struct Settings: Sendable, Codable, Equatable {
        public enum Schedule: String, Sendable, Codable, CaseIterable {
            case layerwise, afterBackward = "after-backward"
        }
        /// How Ĝ is formed: from the factors (Pᵀ·dyᵀ)·(x·Q) as the paper does, or by compressing the layer's gradient.
        public enum Compression: String, Sendable, Codable, CaseIterable { case factors, gradient }

        /// d, the side of the compressed space, and r, nonzeros per projector row.
        public var size = 256, nonzeros = 4
        public var schedule = Schedule.layerwise
        public var compression = Compression.factors
        public var trainEmbeddings = false
        /// Projector learning (§6.3): every `checkFrequency` steps (0: never; the projectors keep their random init),
        /// gradients of `heldOutBatches` batches of the trainer's second data stream are collected; when the mean
        /// relative reconstruction error is at least `refitThreshold` (α), each matrix's values get
        /// `fitIterations` Adam steps at `fitLearningRate` and the host moments move into the new space.
        public var checkFrequency = 200, heldOutBatches = 2, fitIterations = 10
        public var fitLearningRate: Float = 0.1, refitThreshold = 0.5
        /// The host Adam (ε inside the square root, as the system code).
        public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-4

        public init() {}

        /// Settings out of range, found before any weight is loaded.
        public func validate() throws {
            for (setting, value, valid, rule) in [
                ("checkFrequency", "\(checkFrequency)", checkFrequency >= 0, "≥ 0 (0: never refit)"),
                ("heldOutBatches", "\(heldOutBatches)", heldOutBatches >= 1, "≥ 1"),
                ("fitIterations", "\(fitIterations)", fitIterations >= 1, "≥ 1"),
                ("fitLearningRate", "\(fitLearningRate)", fitLearningRate > 0, "> 0"),
                ("refitThreshold", "\(refitThreshold)", refitThreshold >= 0, "≥ 0"),
            ] where !valid {
                throw MethodError(setting: setting, message: "must be \(rule), got \(value)")
            }
        }

        /// Settings out of range, or d or r out of range for a matrix of `layout`.
        public func check(_ layout: ParameterLayout) throws {
            try validate()
            guard nonzeros >= 1, nonzeros <= size else {
                throw MethodError(
                    setting: "nonzeros",
                    message: "(r) must be in 1...the compressed size (d = \(size)), got \(nonzeros)")
            }
            for info in layout.parameters where info.role.isBlockMatrix && size > info.shape.max()! {
                throw MethodError(
                    setting: "size",
                    message: """
                        (d) \(size) exceeds the larger side of \(info.name) \(info.shape); choose d ≤ \
                        \(info.shape.max()!)
                        """)
            }
        }
    }

    public let layout: ParameterLayout
    public let settings: Settings
    public let groups: ParameterGroups
    public let checkpointing: Bool
    /// The offloaded matrices in layout order, and each one's projector pair.
    public let matrices: [ParameterID]
    public let sketches: [SketchPair]
    let host: HostWorker
    private let rest: TensorAdamW
    private let sink: Sink
    private let ledger: MemoryLedger
    /// What the last step did: seconds of compute, of waiting for the host, of host work; bytes each way; projector
    /// fits.
    public private(set) var report: [String: Double] = [:]
    /// Projector fits run, fits skipped because the error was below α, and fits that failed (old values kept).
    public private(set) var fits = 0, keptProjectors = 0, failedFits = 0

    public init(
        layout: ParameterLayout, settings: Settings, groups: ParameterGroups, checkpointing: Bool = false, seed: UInt64,
        ledger: MemoryLedger = .shared
    ) throws {
        try settings.check(layout)
        (self.layout, self.settings, self.groups, self.checkpointing, self.ledger) = (
            layout, settings, groups, checkpointing, ledger
        )
        matrices = layout.parameters.indices.filter {
            layout.parameters[$0].role.isBlockMatrix && !groups.isFrozen(layout.parameters[$0].role)
        }
        let rng = Philox(seed: seed, domain: .lspProjectors)
        sketches = matrices.map { id in
            let shape = layout.parameters[id].shape
            return SketchPair(
                left: CountSketch(
                    count: shape[0], size: settings.size, nonzeros: settings.nonzeros, generator: rng,
                    stream: UInt64(id) << 8, ledger: ledger),
                right: CountSketch(
                    count: shape[1], size: settings.size, nonzeros: settings.nonzeros, generator: rng,
                    stream: UInt64(id) << 8 | 0x80, ledger: ledger))
        }
        host = HostWorker(
            matrices: matrices.count, size: settings.size, beta1: settings.beta1, beta2: settings.beta2,
            epsilon: settings.epsilon,
            queueCapacity: max(1, matrices.count), ledger: ledger)
        let trained = layout.parameters.indices.filter { id in
            let role = layout.parameters[id].role
            return !role.isBlockMatrix && !groups.isFrozen(role) && (role.kind != .matrix || settings.trainEmbeddings)
        }
        rest = TensorAdamW(layout, tensors: trained, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, ledger: ledger)
        sink = Sink(layout: layout, ledger: ledger)
        sink.method = self
        host.start()
    }

    deinit { host.stop() }

    /// Bytes by category for `layout` from shapes alone, besides the weights and a training pass's buffers:
    /// compute-side gradients (every matrix's d×d Ĝ, all in flight at the end of backward, and the largest
    /// accumulator of a tensor trained on the compute side), optimizer state (projectors' indices and values,
    /// AdamW of the norms), the host's M and V, and scratch (the factors of one matrix for `tokens` rows, or
    /// its compression intermediates).
    public static func memory(
        _ layout: ParameterLayout, settings: Settings, groups: ParameterGroups, tokens: Int
    ) -> [MemoryCategory: Int] {
        let d = settings.size, r = settings.nonzeros
        let matrices = layout.parameters.filter { $0.role.isBlockMatrix && !groups.isFrozen($0.role) }
        let rest = layout.parameters.filter {
            !$0.role.isBlockMatrix && !groups.isFrozen($0.role) && ($0.role.kind != .matrix || settings.trainEmbeddings)
        }
        let scratch =
            matrices.map { info -> Int in
                let (m, n) = (info.shape[0], info.shape[1])
                let compress = settings.compression == .factors ? 2 * tokens * d : m * n + d * n
                return max(compress, m * d)
            }.max() ?? 0
        let restLargest = rest.map(\.count).max() ?? 0
        return [
            .gradients: 4 * (matrices.count * d * d + restLargest),
            .optimizerState: matrices.reduce(0) { $0 + 8 * r * ($1.shape[0] + $1.shape[1]) } + 8
                * rest.reduce(0) { $0 + $1.count },
            .host: 8 * matrices.count * d * d + 4 * matrices.count,
            .workspace: 4 * scratch,
        ]
    }

    public var state: [StateTensor] {
        var s = [StateTensor("lsp.host.steps", host.steps)]
        for (k, id) in matrices.enumerated() {
            let name = layout.parameters[id].name, pair = sketches[k]
            s += [
                StateTensor("lsp.p.indices." + name, pair.left.indices),
                StateTensor("lsp.p.values." + name, pair.left.values),
                StateTensor("lsp.q.indices." + name, pair.right.indices),
                StateTensor("lsp.q.values." + name, pair.right.values),
                StateTensor("lsp.host.m." + name, host.m[k]), StateTensor("lsp.host.v." + name, host.v[k]),
            ]
        }
        return s + layout.parameters.indices.flatMap { rest.state($0, name: layout.parameters[$0].name) }
    }

    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        precondition(inputs.batches.count == 1, "LSP-Offload takes one batch per step")
        var fitReport: [String: Double] = [:]
        if settings.checkFrequency > 0, step > 1, (step - 1) % settings.checkFrequency == 0,
            let auxiliary = inputs.auxiliaryBatch
        {
            fitReport = try refit(
                model,
                batches: (0..<settings.heldOutBatches).map {
                    try auxiliary((step - 1) / settings.checkFrequency * settings.heldOutBatches + $0)
                })
        }
        let start = monotonicNanoseconds(), hostBefore = host.busySeconds
        sink.begin(store: model.store, learningRate: learningRate, step: step)
        let loss = try model.lossAndGradients(inputs.batches[0], into: sink, checkpointing: checkpointing)
        guard loss.mean.isFinite else {
            throw MethodError(
                message:
                    """
                    step \(step): non-finite loss \(loss.mean); LSP-Offload moves the norms inside backward and cannot \
                    skip a step. Lower the learning rate.
                    """
            )
        }
        try sink.send()
        let computed = monotonicNanoseconds()
        var waited = 0.0, notApplied = 0
        func apply(_ message: HostWorker.Message) {
            guard message.applied else {
                notApplied += 1
                return
            }
            model.store.update(matrices[message.matrix]) { w in
                sketches[message.matrix].decompress(
                    message.buffer.pointer, scale: 1, into: w.baseAddress!, ledger: ledger)
            }
        }
        func receive() throws -> HostWorker.Message {
            let before = monotonicNanoseconds()
            defer { waited += Double(monotonicNanoseconds() - before) * 1e-9 }
            return try host.receive()
        }
        if settings.schedule == .layerwise {  // each Δ is applied as it arrives, while the host works on the next
            for _ in matrices { apply(try receive()) }
        } else {  // ZeRO-Offload's order: the whole host step, then every update
            for message in try matrices.map({ _ in try receive() }) { apply(message) }
        }
        let bytes = Double(matrices.count * settings.size * settings.size * 4)
        report = [
            "compute_seconds": Double(computed - start) * 1e-9, "host_wait_seconds": waited,
            "host_seconds": host.busySeconds - hostBefore,
            "bytes_to_host": bytes, "bytes_to_compute": bytes, "nonfinite_matrices": Double(notApplied),
        ]
        report["overlap"] = report["host_seconds"]! > 0 ? max(0, 1 - waited / report["host_seconds"]!) : 1
        report.merge(fitReport) { $1 }
        // A matrix whose Ĝ was not finite kept its weights and moments; the step counts as skipped (the norms, updated
        // inside backward, have moved), and too many in a row stop the run.
        let skipped = try notApplied > 0 && !nonFinite.admit(loss: loss.mean, gradientNorm: .nan, step: step)
        return MethodStep(loss: loss, skipped: skipped, details: report)
    }

    /// Collects the matrices' gradients over `batches`, measures the projectors' reconstruction error and, at or above
    /// α, fits every matrix's projector values and carries the host moments over: M ← L·M·Rᵀ, V ←
    /// (L⊙L)·V·(R⊙R)ᵀ with L = P_newᵀ·P_old and R = Q_newᵀ·Q_old (non-finite results become 0). Nothing is in
    /// flight between steps.
    func refit(_ model: LlamaModel, batches: [TokenBatch]) throws -> [String: Double] {
        let start = monotonicNanoseconds()
        let gradients = MatrixGradients(layout: layout, matrices: matrices, ledger: ledger)
        for batch in batches { _ = try model.lossAndGradients(batch, into: gradients, checkpointing: checkpointing) }
        func meanError() -> Double {
            zip(matrices, sketches).reduce(0.0) {
                $0 + ProjectorFit.error($1.1, gradients.buffers[$1.0]!.pointer, ledger: ledger)
            } / Double(max(1, matrices.count))
        }
        let before = meanError()
        var out = ["projector_error": before]
        guard before >= settings.refitThreshold else {
            keptProjectors += 1
            return out
        }
        fits += 1
        let d = settings.size
        let l = AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger),
            r = AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger)
        let t = AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger)
        for (k, id) in matrices.enumerated() {
            let pair = sketches[k], old = (Array(pair.left.values.buffer), Array(pair.right.values.buffer))
            guard
                ProjectorFit.fit(
                    pair, gradients.buffers[id]!.pointer, iterations: settings.fitIterations,
                    learningRate: settings.fitLearningRate, ledger: ledger)
            else {
                failedFits += 1
                continue
            }
            ProjectorFit.overlap(pair.left, old: old.0, into: l.pointer)
            ProjectorFit.overlap(pair.right, old: old.1, into: r.pointer)
            for (moment, squared) in [(host.m[k], false), (host.v[k], true)] {
                if squared {
                    for i in 0..<d * d {
                        (l.pointer[i], r.pointer[i]) = (l.pointer[i] * l.pointer[i], r.pointer[i] * r.pointer[i])
                    }
                }
                GEMM.multiply(m: d, n: d, k: d, l.pointer, lda: d, moment.pointer, ldb: d, t.pointer, ldc: d)  // L·X
                GEMM.multiply(
                    // ·Rᵀ
                    m: d, n: d, k: d, t.pointer, lda: d, r.pointer, ldb: d, transB: true, moment.pointer, ldc: d)
                for i in 0..<d * d where !moment.pointer[i].isFinite { moment.pointer[i] = 0 }
            }
        }
        out["projector_error_after_fit"] = meanError()
        out["projector_fit_seconds"] = Double(monotonicNanoseconds() - start) * 1e-9
        return out
    }

    /// Compresses or updates what backward finishes.
    final class Sink: GradientSink {
        unowned var method: LSPOffload!
        let layout: ParameterLayout
        private let ledger: MemoryLedger
        private let accumulators: TensorAccumulators
        private var compressed: [Int: AlignedBuffer<Float>] = [:]
        /// Gradients compressed but not yet sent (all of them with the after-backward schedule).
        private var pending: [HostWorker.Message] = []
        private var sendFailure: (any Error)?
        private var index: [ParameterID: Int] = [:]
        private var store: (any ParameterStore)?
        private var learningRate: Float = 0, step = 0

        init(layout: ParameterLayout, ledger: MemoryLedger) {
            (self.layout, self.ledger) = (layout, ledger)
            accumulators = TensorAccumulators(layout: layout, ledger: ledger)
        }

        func begin(store: any ParameterStore, learningRate: Float, step: Int) {
            if index.isEmpty { for (k, id) in method.matrices.enumerated() { index[id] = k } }
            (self.store, self.learningRate, self.step) = (store, learningRate, step)
        }

        func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> { accumulators.pointer(for: id) }

        func wants(_ id: ParameterID) -> Bool { index[id] != nil || method.rest.contains(id) }

        func absorbFactors(_ id: ParameterID, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int) -> Bool {
            guard method.settings.compression == .factors, let k = index[id] else { return false }
            let pair = method.sketches[k], d = pair.size
            let a = AlignedBuffer<Float>(count: rows * d, category: .workspace, ledger: ledger)
            let b = AlignedBuffer<Float>(count: rows * d, category: .workspace, ledger: ledger)
            pair.left.rightTimes(dy, rows: rows, into: a.pointer)  // dy·P (rows×d)
            pair.right.rightTimes(x, rows: rows, into: b.pointer)  // x·Q (rows×d)
            let g = compressedBuffer(k)
            GEMM.multiply(
                // += (dy·P)ᵀ·(x·Q)
                m: d, n: d, k: rows, a.pointer, lda: d, transA: true, b.pointer, ldb: d, g.pointer, ldc: d, beta: 1)
            return true
        }

        func finish(_ id: ParameterID) {
            if let k = index[id] {
                if let g = accumulators.take(id) {
                    method.sketches[k].compress(g.pointer, into: compressedBuffer(k).pointer, ledger: ledger)
                }
                guard let g = compressed.removeValue(forKey: k) else { return }
                pending.append(
                    HostWorker.Message(
                        matrix: k, buffer: g,
                        learningRate: method.groups.learningRate(learningRate, for: layout.parameters[id].role)))
                if method.settings.schedule == .layerwise, sendFailure == nil {
                    // finish cannot throw; step throws it after backward
                    do { try send() } catch { sendFailure = error }
                }
                return
            }
            guard let g = accumulators.take(id), method.rest.contains(id), let store else { return }
            let lr = method.groups.learningRate(learningRate, for: layout.parameters[id].role)
            let keep = 1 - lr * method.groups.weightDecay(for: layout.parameters[id].role)
            store.update(id) { w in
                method.rest.update(id, weights: w, gradient: g.pointer, learningRate: lr, keep: keep, step: step)
            }
        }

        /// Sends what is pending to the host; throws the first failure of a send inside backward.
        func send() throws {
            if let failure = sendFailure {
                sendFailure = nil
                throw failure
            }
            while let message = pending.first {
                try method.host.send(message)
                pending.removeFirst()
            }
        }

        private func compressedBuffer(_ k: Int) -> AlignedBuffer<Float> {
            if let g = compressed[k] { return g }
            let g = AlignedBuffer<Float>(
                count: method.settings.size * method.settings.size, category: .gradients, ledger: ledger)
            compressed[k] = g
            return g
        }
    }
}
