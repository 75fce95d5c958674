import Foundation
import Testing
import Datasets
import Formats
import Llama
import Methods
import TensorCore
import TestSupport
@testable import Training

@Suite("Trainer")
struct TrainerTests {
    /// A tiny random model and examples whose second half repeats a pattern the model can learn.
    static func setUp(
        _ method: TrainingOptions.Method, clip: Double? = 1.0, batch: Int = 4, accumulation: Int = 1,
        qft: QFT.Settings = QFT.Settings(), precision: Precision = .fp32,
        weights: TrainingOptions.Weights = .auto
    ) throws -> Trainer {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let examples = (0..<8).map { i in
            TokenizedExample(ids: (0..<12).map { Int32(($0 * 3 + i) % 24) }, trained: (0..<12).map { $0 > 0 })
        }
        var o = TrainingOptions()
        o.method = method
        o.schedule = LRSchedule(
            // SGD; LSP: ε = 1e-4 inside √V damps small compressed gradients
            .constant, peak: method == .sgd || method == .lspOffload ? 0.1 : 1e-2, warmup: 2, total: 30)
        o.batchSize = batch
        o.accumulation = accumulation
        o.maxLength = 16
        o.clipNorm = clip
        o.zerothOrder.projection.interval = 2  // DiZO projects every other step
        o.qft = qft
        o.lowRank = TrainerTests.lowRank(method, rank: 4)
        (o.lsp.size, o.lsp.nonzeros) = (16, 4)
        (o.precision, o.weights) = (precision, weights)
        let model = try Trainer.model(
            try LlamaModel(randomWeights: c, seed: 3, std: 0.1, ledger: MemoryLedger()), for: o)
        return try Trainer(model: model, examples: examples, options: o)
    }

    /// Small subspaces for the tiny models: rank ≤ `rank`, refreshed every 5 steps (AdaRankGrad: when it captures less
    /// than half of ‖G‖², after 2 to 5 steps), scale 1.
    static func lowRank(_ method: TrainingOptions.Method, rank: Int) -> LowRankAdam.Settings {
        var s = LowRankAdam.Settings()
        s.policy =
            method == .adarankgrad
            ? .adaptive(minRank: 1, maxRank: rank, energy: 0.9, capture: 0.5, minInterval: 2, maxInterval: 5)
            : .fixed(rank: rank, interval: 5)
        s.scale = 1
        return s
    }

    /// Global clipping where the method allows it (fused updates never know the global norm).
    static func clip(_ method: TrainingOptions.Method) -> Double? {
        method == .adamwFused || method == .qft || method == .lspOffload ? nil : 1.0
    }

    /// Every parameter's fp32 values, and the store's own tensors when it has them.
    static func weights(_ trainer: Trainer) -> (floats: [[Float]], native: [[UInt8]]) {
        let store = trainer.model.store
        return (
            store.layout.parameters.indices.map { id in store.withFloats(id) { Array($0) } },
            store.nativeState?.map(\.bytes) ?? []
        )
    }

    @Test("the loss falls over 30 steps", arguments: TrainingOptions.Method.allCases.filter { !$0.isZerothOrder })
    func learns(method: TrainingOptions.Method) throws {
        let trainer = try Self.setUp(method, clip: Self.clip(method))
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
        #expect(
            Array((a.model.store as! FP32ParameterStore).slab.buffer)
                == Array((b.model.store as! FP32ParameterStore).slab.buffer))
    }

    @Test("two accumulated micro-batches of 2 make the same step as one batch of 4")
    func accumulation() throws {
        let whole = try Self.setUp(.adamw, clip: nil),
            parts = try Self.setUp(.adamw, clip: nil, batch: 2, accumulation: 2)
        let a = try whole.runStep(), b = try parts.runStep()
        #expect(a.tokens == b.tokens && abs(a.loss - b.loss) <= 1e-6 * a.loss)
        let wa = (whole.model.store as! FP32ParameterStore).slab.buffer,
            wb = (parts.model.store as! FP32ParameterStore).slab.buffer
        #expect(zip(wa, wb).allSatisfy { abs($0 - $1) <= 1e-6 })
        #expect(throws: TrainingError.self) { try Self.setUp(.adamwFused, clip: nil, batch: 2, accumulation: 2) }
    }

    @Test("packed examples give the loss and gradients of the same examples batched alone", arguments: [false, true])
    func packing(checkpointing: Bool) throws {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let model = try LlamaModel(randomWeights: c, seed: 5, std: 0.2, ledger: MemoryLedger())
        let examples = [5, 9, 3, 12, 7].enumerated().map { i, n in
            TokenizedExample(ids: (0..<n).map { Int32(($0 * 5 + i * 7) % 24) }, trained: (0..<n).map { $0 > i % 3 })
        }
        // 4 + 8 + 2 positions fit in 16
        #expect(Batcher.packRows(examples.map(\.ids.count), maxLength: 16) == [0..<3, 3..<4, 4..<5])
        let alone = try Batcher.batch(examples, maxLength: 16)
        let packed = try Batcher.batch(
            packed: [Array(examples[0..<2]), Array(examples[2..<4]), [examples[4]]], maxLength: 16)
        #expect(packed.batchSize == 3 && packed.length == 13 && packed.segmentStarts != nil)
        let ga = GradientSlab(layout: model.layout, ledger: model.ledger),
            gp = GradientSlab(layout: model.layout, ledger: model.ledger)
        let la = try model.lossAndGradients(alone, into: ga, checkpointing: checkpointing)
        let lp = try model.lossAndGradients(packed, into: gp, checkpointing: checkpointing)
        #expect(la.count == lp.count && abs(la.sum - lp.sum) <= 1e-5 * la.sum)
        #expect(abs(try model.loss(packed).sum - la.sum) <= 1e-5 * la.sum)
        let scale = ga.slab.buffer.map { abs($0) }.max()!
        #expect(zip(ga.slab.buffer, gp.slab.buffer).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
    }

    @Test(
        "frozen groups stay bit for bit; a group's learning-rate scale of 0 leaves it too; the rest moves",
        arguments: [TrainingOptions.Method.adamw, .adamwFused])
    func groups(method: TrainingOptions.Method) throws {
        let base = try Self.setUp(method, clip: nil)
        var o = base.options
        o.groups = ParameterGroups(weightDecay: 0.1, frozen: [.embedding], learningRateScale: [.mlp: 0])
        let trainer = try Trainer(model: base.model, examples: base.examples, options: o)
        let layout = trainer.model.layout
        func weights() -> [[Float]] {
            layout.parameters.indices.map { id in trainer.model.store.withFloats(id) { Array($0) } }
        }
        let before = weights()
        for _ in 0..<3 { _ = try trainer.runStep() }
        let after = weights()
        for (id, info) in layout.parameters.enumerated() {
            let group = ParameterGroup(info.role)
            #expect((before[id] == after[id]) == (group == .embedding || group == .mlp), "\(info.name)")
        }
    }

    @Test("fused updates with global clipping are refused before training, naming the trade-off")
    func fusedWithClipping() throws {
        let error = try #require(throws: TrainingError.self) { try Self.setUp(.adamwFused, clip: 1.0) }
        #expect(error.message.contains("global gradient norm") && error.message.contains("use adamw"))
    }
}

@Suite("Checkpoints")
struct CheckpointTests {
    static func directory(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-ckpt-\(getpid())-\(name)")
            .path
        try? FileManager.default.removeItem(atPath: dir)
        return dir
    }

    @Test(
        "N straight steps equal N/2 steps, a checkpoint, a restore into a fresh model and N/2 more, bit for bit",
        arguments: [
            (TrainingOptions.Method.adamw, QFT.GradientMode.fused), (.adamwFused, .fused), (.lion, .fused),
            (.sgd, .fused),
            (.mezo, .fused), (.dizo, .fused), (.qft, .fused), (.qft, .stack), (.galore, .fused), (.adarankgrad, .fused),
            (.lspOffload, .fused), (.adamMini, .fused),
        ])
    func bitExactResume(method: TrainingOptions.Method, gradients: QFT.GradientMode) throws {
        var qft = QFT.Settings()
        qft.gradients = gradients
        qft.refreshInterval = 2  // outliers are chosen anew across the checkpoint
        let clip: Double? = gradients == .stack ? 1.0 : TrainerTests.clip(method)
        func setUp() throws -> Trainer { try TrainerTests.setUp(method, clip: clip, qft: qft) }
        let straight = try setUp()
        for _ in 0..<6 { _ = try straight.runStep() }

        let first = try setUp()
        for _ in 0..<3 { _ = try first.runStep() }
        let path = try Checkpoint.save(first, in: Self.directory("\(method.rawValue)-\(gradients.rawValue)"))
        #expect(path.hasSuffix("step-000003"))

        let resumed = try setUp()  // fresh weights and state, as a new process has
        try Checkpoint.restore(resumed, from: path)
        #expect(resumed.step == 3)
        for _ in 0..<3 { _ = try resumed.runStep() }
        let (a, b) = (TrainerTests.weights(straight), TrainerTests.weights(resumed))
        #expect(a.floats == b.floats && a.native == b.native && (method == .qft) == !a.native.isEmpty)
        for (a, b) in zip(straight.method.state, resumed.method.state) { #expect(a.bytes == b.bytes) }
    }

    @Test(
        "bf16 weights (stochastic rounding on update, its counters checkpointed) resume bit for bit",
        arguments: [TrainingOptions.Method.mezo, .dizo, .adamw, .adamwFused])
    func bf16Resume(method: TrainingOptions.Method) throws {
        func setUp() throws -> Trainer {
            try TrainerTests.setUp(method, clip: TrainerTests.clip(method), precision: .bf16, weights: .bf16)
        }
        let straight = try setUp()
        #expect(straight.model.store is BF16ParameterStore)
        for _ in 0..<6 { _ = try straight.runStep() }
        let first = try setUp()
        for _ in 0..<3 { _ = try first.runStep() }
        let path = try Checkpoint.save(first, in: Self.directory("bf16-\(method.rawValue)"))
        let resumed = try setUp()
        try Checkpoint.restore(resumed, from: path)
        for _ in 0..<3 { _ = try resumed.runStep() }
        let (a, b) = (TrainerTests.weights(straight), TrainerTests.weights(resumed))
        #expect(!a.native.isEmpty && a.native == b.native && a.floats == b.floats)
        #expect(a.native != TrainerTests.weights(try setUp()).native, "the weights did not move")
    }

    @Test("a checkpoint of another method, or a damaged one, is refused and changes nothing")
    func refusals() throws {
        let trainer = try TrainerTests.setUp(.adamw)
        _ = try trainer.runStep()
        let path = try Checkpoint.save(trainer, in: Self.directory("refuse"))
        let lion = try TrainerTests.setUp(.lion)
        let before = Array((lion.model.store as! FP32ParameterStore).slab.buffer)
        let e = try #require(throws: TrainingError.self) { try Checkpoint.restore(lion, from: path) }
        #expect(e.message.contains("adamw") && e.message.contains("lion"))
        // Other options (here the schedule) would not continue the same run.
        var options = trainer.options
        options.schedule.total += 10
        let longer = try Trainer(
            model: try LlamaModel(randomWeights: trainer.model.config, seed: 3, std: 0.1, ledger: MemoryLedger()),
            examples: trainer.examples, options: options)
        let e2 = try #require(throws: TrainingError.self) { try Checkpoint.restore(longer, from: path) }
        #expect(e2.message.contains("schedule") && longer.step == 0)
        // Truncate the weights file: the restore fails and the weights stay as they were.
        let weights = path + "/weights.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: weights))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: weights))
        let other = try TrainerTests.setUp(.adamw)
        let untouched = Array((other.model.store as! FP32ParameterStore).slab.buffer)
        #expect(throws: (any Error).self) { try Checkpoint.restore(other, from: path) }
        #expect(Array((other.model.store as! FP32ParameterStore).slab.buffer) == untouched && other.step == 0)
        #expect(Array((lion.model.store as! FP32ParameterStore).slab.buffer) == before)
    }
}

extension CheckpointTests {
    @Test(
        """
        a QFT checkpoint of another quantization layout, or with outlier indices out of range, is refused before any \
        step
        """
    )
    func qftLayout() throws {
        let trainer = try TrainerTests.setUp(.qft, clip: nil)
        _ = try trainer.runStep()
        let path = try Checkpoint.save(trainer, in: Self.directory("qft-layout"))
        var other = QFT.Settings()
        other.weights.outlierFraction = 0.05
        let different = try TrainerTests.setUp(.qft, clip: nil, qft: other)
        let e = try #require(throws: TrainingError.self) { try Checkpoint.restore(different, from: path) }
        #expect(e.message.contains("qft") && different.step == 0, "\(e.message)")
        // Same settings, but one outlier column index beyond the row: the layout check refuses it.
        let weights = try SafeTensorsFile(path: path + "/weights.safetensors")
        let columns = try #require(weights.tensors["model.layers.0.mlp.down_proj.weight.outlier_columns"])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path + "/weights.safetensors")))
        withUnsafeBytes(of: Int32(1_000_000).littleEndian) {
            bytes.replaceSubrange(columns.offset..<columns.offset + 4, with: $0)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path + "/weights.safetensors"))
        let fresh = try TrainerTests.setUp(.qft, clip: nil)
        let e2 = try #require(throws: TrainingError.self) { try Checkpoint.restore(fresh, from: path) }
        #expect(e2.message.contains("down_proj") && e2.message.contains("CSR"), "\(e2.message)")
    }
}

@Suite("Memory plan")
struct MemoryPlanTests {
    /// The plan sums each category's largest use, so it bounds the peak from above: attention's transient buffers (the
    /// tasks' score scratch, 16 KiB here, and in bf16 its rounded operands; 2–5% of this tiny model, nothing next to
    /// SmolLM2's 2.4 GiB) are not always alive at the moment of the peak.
    @Test(
        """
        the estimate from shapes bounds the ledger's peak of a real step within attention's buffers + 1% (AdaRankGrad: \
        from above)
        """,
        arguments: TrainingOptions.Method.allCases)
    func matchesLedger(method: TrainingOptions.Method) throws {
        // fp32, and bf16 compute (where this CPU has it) with bf16 weights (QFT: its INT8 ones).
        for (checkpointing, precision) in [(false, Precision.fp32), (true, .fp32), (false, .bf16), (true, .bf16)] {
            let c = LlamaConfig(
                dim: 32, ffnDim: 64, layerCount: 3, headCount: 4, kvHeadCount: 2, vocabSize: 50,
                maxSequenceLength: 64, tiedEmbeddings: method != .lion)
            let ledger = MemoryLedger()
            let examples = (0..<4).map { i in
                TokenizedExample(ids: (0..<33).map { Int32(($0 + i) % 50) }, trained: Array(repeating: true, count: 33))
            }
            var o = TrainingOptions()
            o.method = method
            o.clipNorm = TrainerTests.clip(method)
            o.batchSize = 4
            o.maxLength = 32
            o.checkpointing = checkpointing
            o.lowRank = TrainerTests.lowRank(method, rank: 8)
            (o.lsp.size, o.lsp.nonzeros) = (16, 4)
            (o.precision, o.weights) = (precision, precision == .bf16 && method != .qft ? .bf16 : .auto)
            let model = try Trainer.model(try LlamaModel(randomWeights: c, seed: 1, ledger: ledger), for: o)
            let trainer = try Trainer(model: model, examples: examples, options: o)
            ledger.resetPeak()  // QFT converts the weights from an fp32 copy that is gone by now
            // GaLore's peak is a refresh that replaces a projector (step 6 with T = 5), not the first one.
            for _ in 0..<(o.method == .galore || o.method == .adarankgrad ? 6 : 1) { _ = try trainer.runStep() }
            let plan = MemoryPlan.estimate(c, options: o).values.reduce(0, +)
            let peak = ledger.snapshot().peakTotal
            let attention = AttentionShape(
                batch: 4, queries: 32, keys: 32, heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                queryOffset: 0)
            let scratch =
                // tasks × matrices × queries × keys
                4 * min(Parallel.threadCount, 4 * c.kvHeadCount) * (method.isZerothOrder ? 1 : 2) * 32 * 32
                + (model.bf16 == nil
                    ? 0
                    : Attention.bf16Bytes(attention, backward: !method.isZerothOrder, threads: Parallel.threadCount))
            #expect(
                plan >= peak, "\(method) checkpointing \(checkpointing) \(precision): plan \(plan) vs ledger \(peak)")
            // planned at its largest rank: an upper bound, its ranks fall
            guard method != .adarankgrad else { continue }
            #expect(
                Double(plan - peak) <= Double(scratch) + 0.01 * Double(peak),
                "\(method) checkpointing \(checkpointing) \(precision): plan \(plan) vs ledger \(peak)")
        }
    }
}

@Suite("Classification")
struct ClassificationTests {
    /// Examples of two classes whose label words are one and two tokens; prompts of 3 to 7 tokens, or all of 6.
    static func examples(_ n: Int, varied: Bool = true) -> [ClassificationExample] {
        (0..<n).map { i in
            let prompt = (0..<(varied ? 3 + i % 5 : 6)).map { Int32(($0 * 7 + i) % 24) }
            let words: [[Int32]] = [[Int32(i % 5)], [Int32(10 + i % 3), 20]]
            return ClassificationExample(
                candidates: words.map { w in
                    TokenizedExample(ids: prompt + w, trained: prompt.map { _ in false } + w.map { _ in true })
                }, label: i % 2)
        }
    }

    @Test("the classification loss is the cross-entropy of the gold class over the candidates' scores")
    func classificationLoss() throws {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let model = try LlamaModel(randomWeights: c, seed: 7, std: 0.3, ledger: MemoryLedger())
        let examples = Self.examples(5)
        let scores = try Classification.scores(model, examples, batchSize: 1, maxLength: 16)
        let loss = try Classification.loss(model, examples, maxLength: 16)
        // Two classes: −log σ(s_gold − s_other) = log(1 + e^(s_other − s_gold)).
        let expected = zip(examples, scores).reduce(0.0) {
            $0 + Foundation.log(1 + Foundation.exp($1.1[1 - $1.0.label] - $1.1[$1.0.label]))
        }
        #expect(loss.count == 5 && abs(loss.sum - expected) <= 1e-6 * expected)
    }

    @Test(
        """
        MeZO on the classification loss: the step's objective is that loss on the step's examples; the plan counts \
        every candidate
        """
    )
    func zerothOrderObjective() throws {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let ledger = MemoryLedger()
        let model = try LlamaModel(randomWeights: c, seed: 7, std: 0.3, ledger: ledger)
        let examples = Self.examples(8, varied: false)
        var o = TrainingOptions()
        o.method = .mezo
        o.batchSize = 4
        o.maxLength = 7  // every sequence: 6 prompt tokens and 2 label-word tokens
        o.objective = .classification(classes: 2)
        o.schedule = LRSchedule(.constant, peak: 0, warmup: 0, total: 4)  // weights stay: ℓ₊ is the loss at θ + εz
        let trainer = try Trainer(
            model: model, examples: examples.map { $0.candidates[$0.label] }, candidates: examples, options: o)
        ledger.resetPeak()
        let report = try trainer.runStep()
        let picked = trainer.sequences(at: 0, stream: 0).joined().map { examples[$0] }
        let mezo = try #require(trainer.method as? MeZO)
        mezo.perturb(model.store, step: 1, scale: 1)
        let plus = try Classification.loss(model, picked, maxLength: 7)
        mezo.perturb(model.store, step: 1, scale: -1)
        // θ + εz − 2εz + εz is θ to within an ulp per weight, not exactly, so the losses agree to float precision.
        #expect(
            report.tokens == 4 && abs(report.loss - plus.mean) <= 1e-6 * plus.mean, "\(report.loss) vs \(plus.mean)")
        let plan = MemoryPlan.estimate(c, options: o).values.reduce(0, +), peak = ledger.snapshot().peakTotal
        #expect(plan >= peak && Double(plan - peak) <= 0.03 * Double(peak), "plan \(plan) vs ledger \(peak)")
        // A gradient method, packing, or missing candidates are refused.
        for (method, packing) in [(TrainingOptions.Method.adamw, false), (.mezo, true)] {
            var bad = o
            (bad.method, bad.packing) = (method, packing)
            #expect(throws: TrainingError.self) { try bad.validate() }
        }
        #expect(throws: TrainingError.self) {
            try Trainer(model: model, examples: examples.map { $0.candidates[0] }, options: o)
        }
    }

    @Test("per-sequence losses add up to the batch loss, and accuracy is the argmax of mean label-word log-likelihoods")
    func scoring() throws {
        let c = LlamaConfig(
            dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
        let model = try LlamaModel(randomWeights: c, seed: 7, std: 0.3, ledger: MemoryLedger())
        let examples = Self.examples(7)  // prompts of different lengths; class 0's word is one token, class 1's two
        let batch = try Batcher.batch(examples.flatMap(\.candidates), maxLength: 16)
        let each = try model.sequenceLosses(batch), whole = try model.loss(batch)
        #expect(
            abs(each.reduce(0) { $0 + $1.sum } - whole.sum) <= 1e-9 * whole.sum
                && each.map(\.count) == examples.flatMap { _ in [1, 2] })
        let scores = try Classification.scores(model, examples, batchSize: 3, maxLength: 16)
        for (e, s) in zip(examples, scores) {
            for (k, candidate) in e.candidates.enumerated() {  // each candidate scored alone
                let alone = try model.loss(try Batcher.batch([candidate], maxLength: 16))
                #expect(abs(s[k] + alone.mean) <= 1e-5 * alone.mean)
            }
        }
        let result = try Classification.evaluate(model, examples, batchSize: 4, maxLength: 16)
        let expected = zip(examples, scores).filter { e, s in (s[1] > s[0] ? 1 : 0) == e.label }.count
        #expect(
            result.count == 7 && result.correct == expected
                && result.loss.count == examples.map { $0.label + 1 }.reduce(0, +))
    }
}
