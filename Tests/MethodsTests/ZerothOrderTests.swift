import Foundation
import Testing
import Llama
@testable import Methods
import TensorCore

@Suite("Zeroth-order methods")
struct ZerothOrderTests {
    static let config = LlamaConfig(
        dim: 16, ffnDim: 32, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)

    static func model(seed: UInt64 = 3) throws -> LlamaModel {
        try LlamaModel(randomWeights: config, seed: seed, std: 0.3, ledger: MemoryLedger())
    }

    static let batch = TokenBatch(sequences: (0..<4).map { i in (0..<13).map { Int32(($0 * 5 + i * 3) % 24) } })

    static func weights(_ m: LlamaModel) -> [Float] { Array((m.store as! FP32ParameterStore).slab.buffer) }

    static func inputs(_ m: LlamaModel) -> StepInputs {
        StepInputs(batches: [batch], objective: { try m.loss(batch) }, auxiliaryObjective: { _ in try m.loss(batch) })
    }

    /// One ulp at the largest magnitude the sequence gives the weight (|p| + 2|εz|): in-place fp32 additions lose
    /// the low bits of a weight smaller than its perturbation, which no later pass can recover without storing them.
    static func restoreBound(_ p: Float) -> Float { (abs(p) + 2e-3 * 6).ulp }

    @Test("+ε, −2ε, +ε restores every weight to within one fp32 ulp at the magnitude of its perturbation")
    func restores() throws {
        let m = try Self.model()
        let mezo = MeZO(layout: m.layout, epsilon: 1e-3, seed: 7)
        for step in 1...5 {
            let before = Self.weights(m)
            mezo.perturb(m.store, step: step, scale: 1)
            #expect(Self.weights(m) != before)
            mezo.perturb(m.store, step: step, scale: -2)
            mezo.perturb(m.store, step: step, scale: 1)
            let after = Self.weights(m)
            let worst = zip(before, after).map { abs($0 - $1) / Self.restoreBound($0) }.max()!
            let exact = zip(before, after).filter { $0 == $1 }.count
            #expect(worst <= 1, "worst drift \(worst) ulp; \(exact) of \(before.count) exact")
            #expect(exact > before.count / 2, "\(exact) of \(before.count) exact")
        }
    }

    @Test("the mean of many SPSA estimates points where backprop's gradient points (cosine > 0.3; chance ≈ 0.02)")
    func estimatesFollowTheGradient() throws {
        let m = try Self.model(), layout = m.layout
        let slab = GradientSlab(layout: layout, ledger: m.ledger)
        _ = try m.lossAndGradients(Self.batch, into: slab)
        let exact = slab.slab.buffer.map(Double.init)
        let mezo = MeZO(layout: layout, epsilon: 1e-3, seed: 11)
        var mean = [Double](repeating: 0, count: exact.count)
        let samples = 3000
        for step in 1...samples {
            mezo.perturb(m.store, step: step, scale: 1)
            let plus = try m.loss(Self.batch).mean
            mezo.perturb(m.store, step: step, scale: -2)
            let minus = try m.loss(Self.batch).mean
            mezo.perturb(m.store, step: step, scale: 1)
            let g = (plus - minus) / 2e-3
            for id in mezo.trainable {
                let info = layout.parameters[id]
                for i in 0..<info.count {
                    mean[info.offset + i] +=
                        g * Double(mezo.rng.normal(stream: mezo.stream(step: step, k: 0, id: id), index: UInt64(i)))
                }
            }
        }
        let dot = zip(mean, exact).reduce(0) { $0 + $1.0 * $1.1 }
        let cosine =
            dot / (mean.map { $0 * $0 }.reduce(0, +).squareRoot() * exact.map { $0 * $0 }.reduce(0, +).squareRoot())
        #expect(cosine > 0.3, "cosine \(cosine) over \(exact.count) parameters and \(samples) estimates")
    }

    @Test("a MeZO step equals its definition: θ − η·g·z with g from the two perturbed losses; the loss falls")
    func step() throws {
        let m = try Self.model(), reference = try Self.model(), layout = m.layout
        let mezo = MeZO(layout: layout, epsilon: 1e-3, seed: 5)
        var guardian = NonFiniteGuard()
        let r = try mezo.step(m, inputs: Self.inputs(m), learningRate: 1e-2, step: 1, nonFinite: &guardian)
        mezo.perturb(reference.store, step: 1, scale: 1)
        let plus = try reference.loss(Self.batch)
        mezo.perturb(reference.store, step: 1, scale: -2)
        let minus = try reference.loss(Self.batch)
        mezo.perturb(reference.store, step: 1, scale: 1)
        let g = (Float(plus.mean) - Float(minus.mean)) / 2e-3
        #expect(r.loss == plus)
        var worst: Float = 0
        let w = Self.weights(m), w0 = Self.weights(reference)
        for id in layout.parameters.indices {
            let info = layout.parameters[id]
            for i in 0..<info.count {
                let z = mezo.rng.normal(stream: mezo.stream(step: 1, k: 0, id: id), index: UInt64(i))
                worst = max(worst, abs(w[info.offset + i] - (w0[info.offset + i] - 1e-2 * g * z)))
            }
        }
        #expect(worst < 1e-6)
        let first = try m.loss(Self.batch).mean
        for s in 2...400 {
            _ = try mezo.step(m, inputs: Self.inputs(m), learningRate: 1e-3, step: s, nonFinite: &guardian)
        }
        let last = try m.loss(Self.batch).mean
        #expect(last < 0.9 * first, "\(first) → \(last)")
    }

    @Test("a non-finite loss skips the step, counts it and leaves the weights as they were")
    func nonFinite() throws {
        let m = try Self.model(), before = Self.weights(m)
        let mezo = MeZO(layout: m.layout, epsilon: 1e-3, seed: 5)
        var guardian = NonFiniteGuard(limit: 3)
        var calls = 0
        let inputs = StepInputs(
            batches: [Self.batch],
            objective: {
                calls += 1
                return calls == 2 ? LossResult(sum: .infinity, count: 1) : try m.loss(Self.batch)
            }, auxiliaryObjective: { _ in try m.loss(Self.batch) })
        let r = try mezo.step(m, inputs: inputs, learningRate: 1e-2, step: 1, nonFinite: &guardian)
        #expect(r.skipped && guardian.skipped == 1)
        #expect(zip(before, Self.weights(m)).allSatisfy { abs($0 - $1) <= Self.restoreBound($0) })
    }

    @Test(
        "DiZO's projection keeps each Δ's direction (cosine 1) with its norm ratio in [1 − τ, 1 + τ]",
        arguments: DiZO.ProjectedSet.allCases.filter { $0 != .none })
    func projection(set: DiZO.ProjectedSet) throws {
        let m = try Self.model()
        var p = DiZO.Projection()
        p.set = set
        p.interval = 1000  // project by hand below
        let dizo = try DiZO(
            mezo: MeZO(layout: m.layout, epsilon: 1e-3, seed: 9), projection: p, store: m.store, seed: 9,
            ledger: m.ledger)
        #expect(dizo.projected.allSatisfy { set.contains(m.layout.parameters[$0].role) } && !dizo.projected.isEmpty)
        var guardian = NonFiniteGuard()
        for s in 1...20 {
            _ = try dizo.step(m, inputs: Self.inputs(m), learningRate: 5e-2, step: s, nonFinite: &guardian)
        }
        func deltas() -> [[Double]] {
            zip(dizo.projected, dizo.anchors).map { id, anchor in
                m.store.withFloats(id) { w in (0..<w.count).map { Double(w[$0] - anchor.pointer[$0]) } }
            }
        }
        let before = deltas()
        try dizo.project(m.store, round: 1, objective: { _ in try m.loss(Self.batch) })
        let after = deltas()
        var changed = false
        for (a, b) in zip(before, after) {
            let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }, na = a.map { $0 * $0 }.reduce(0, +).squareRoot(),
                nb = b.map { $0 * $0 }.reduce(0, +).squareRoot()
            #expect(dot / (na * nb) > 1 - 1e-6)
            #expect(nb / na >= 1 - 0.2 - 1e-4 && nb / na <= 1 + 0.2 + 1e-4, "ratio \(nb / na)")
            if abs(nb / na - 1) > 1e-3 { changed = true }
        }
        #expect(changed, "the search moved no ratio")
    }

    @Test("DiZO with nothing projected is MeZO bit for bit; a set that matches no trainable tensor is refused")
    func dizoOff() throws {
        let a = try Self.model(), b = try Self.model()
        var p = DiZO.Projection()
        p.set = .none
        p.interval = 2
        let mezo = MeZO(layout: a.layout, epsilon: 1e-3, seed: 4)
        let dizo = try DiZO(
            mezo: MeZO(layout: b.layout, epsilon: 1e-3, seed: 4), projection: p, store: b.store, seed: 4,
            ledger: b.ledger)
        var ga = NonFiniteGuard(), gb = NonFiniteGuard()
        for s in 1...6 {
            _ = try mezo.step(a, inputs: Self.inputs(a), learningRate: 1e-2, step: s, nonFinite: &ga)
            _ = try dizo.step(b, inputs: Self.inputs(b), learningRate: 1e-2, step: s, nonFinite: &gb)
        }
        #expect(Self.weights(a) == Self.weights(b) && dizo.anchors.isEmpty)
        p.set = .kv
        let frozen = MeZO(
            layout: a.layout, epsilon: 1e-3, seed: 4, groups: ParameterGroups(weightDecay: 0, frozen: [.attention]))
        #expect(throws: MethodError.self) { try DiZO(mezo: frozen, projection: p, store: a.store, seed: 4) }
    }
}

@Suite("Zeroth-order methods on bf16 weights")
struct BF16ZerothOrderTests {
    static func model(bf16 kernel: BF16Kernel?) throws -> LlamaModel {
        let fp32 = try ZerothOrderTests.model()
        let store = BF16ParameterStore(converting: fp32.store, seed: 5, ledger: MemoryLedger())
        return try LlamaModel(config: ZerothOrderTests.config, store: store, bf16: kernel, ledger: MemoryLedger())
    }

    static func bits(_ m: LlamaModel) -> [UInt16] { Array((m.store as! BF16ParameterStore).slab.buffer) }

    @Test(
        "in place, +εz −2εz +εz does not restore rounded weights; perturbed as read, a step at lr 0 leaves every bit",
        arguments: [nil, BF16Kernel.emulated])
    func restoresBitForBit(kernel: BF16Kernel?) throws {
        let m = try Self.model(bf16: kernel), before = Self.bits(m)
        let mezo = MeZO(layout: m.layout, epsilon: 1e-3, seed: 7)
        var guardian = NonFiniteGuard()
        for step in 1...3 {
            let r = try mezo.step(
                m, inputs: ZerothOrderTests.inputs(m), learningRate: 0, step: step, nonFinite: &guardian)
            #expect(r.gradientNorm.map { $0 > 0 } == true, "the two forwards saw the same weights")
            #expect(m.perturbation == nil)
        }
        #expect(Self.bits(m) == before)
        // What the shipped in-place perturbation does to bf16 weights.
        let inPlace = try Self.model(bf16: kernel)
        mezo.perturb(inPlace.store, step: 1, scale: 1)
        mezo.perturb(inPlace.store, step: 1, scale: -2)
        mezo.perturb(inPlace.store, step: 1, scale: 1)
        #expect(Self.bits(inPlace) != before)
    }

    @Test("the loss a read-time perturbation sees is the loss of the weights perturbed in fp32")
    func perturbedLoss() throws {
        let fp32 = try ZerothOrderTests.model(), m = try Self.model(bf16: nil)
        // The fp32 model rounded to bf16 as the store holds it, then perturbed in place in fp32.
        let rounded = FP32ParameterStore(converting: m.store, ledger: MemoryLedger())
        let reference = try LlamaModel(config: ZerothOrderTests.config, store: rounded, ledger: MemoryLedger())
        let mezo = MeZO(layout: m.layout, epsilon: 1e-3, seed: 7)
        mezo.perturb(rounded, step: 4, scale: 1)
        m.perturbation = mezo.readPerturbation(step: 4, k: 0, scale: 1)
        let a = try reference.loss(ZerothOrderTests.batch).mean, b = try m.loss(ZerothOrderTests.batch).mean
        #expect(abs(a - b) < 1e-5 * a, "in place \(a), as read \(b)")
        #expect(a != (try fp32.loss(ZerothOrderTests.batch).mean))
    }
}
