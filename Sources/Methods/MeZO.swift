import Llama
import TensorCore

/// MeZO (Malladi et al., 2023): zeroth-order SGD by simultaneous perturbation, at inference memory.
/// Per step and perturbation k: θ ← θ + εz, ℓ₊ = L(θ); θ ← θ − 2εz, ℓ₋ = L(θ); g = (ℓ₊ − ℓ₋)/2ε (fp32);
/// θ ← θ + εz (restore); then θ ← θ − η(g·z + λθ), λ on decayed tensors only. z ~ N(0, I) is never
/// stored: it is regenerated from (seed, step, k, tensor) by the counter-based RNG inside each pass.
/// With one perturbation the restore and the update are one pass. The reported loss is ℓ₊.
public final class MeZO: FineTuningMethod {
    public let layout: ParameterLayout
    public let epsilon: Float
    /// n: perturbations averaged per step (MeZO's default and all its reported runs: 1).
    public let perturbations: Int
    /// Weight decay, frozen groups (not perturbed, not updated).
    public let groups: ParameterGroups
    /// The trainable tensors, in a fixed order.
    public let trainable: [ParameterID]
    let rng: Philox

    public init(
        layout: ParameterLayout, epsilon: Float, perturbations: Int = 1, seed: UInt64,
        groups: ParameterGroups = ParameterGroups(weightDecay: 0)
    ) {
        precondition(epsilon > 0 && perturbations >= 1 && perturbations < 4096 && layout.parameters.count < 4096)
        self.layout = layout
        self.epsilon = epsilon
        self.perturbations = perturbations
        self.groups = groups
        trainable = layout.parameters.indices.filter { !groups.isFrozen(layout.parameters[$0].role) }
        rng = Philox(seed: seed, domain: .mezo)
    }

    public var state: [StateTensor] { [] }

    /// The RNG stream of perturbation `k` of `step` for tensor `id`.
    func stream(step: Int, k: Int, id: ParameterID) -> UInt64 { UInt64(step) << 24 | UInt64(k) << 12 | UInt64(id) }

    /// p ← keep(p)·p + Σ coefficient(p)·z_k over every trainable tensor, in parallel, z regenerated in tiles.
    /// `terms` gives (k, coefficient for the tensor); `keep` the tensor's factor (1 leaves p unscaled).
    public func pass(
        _ store: any ParameterStore, step: Int, terms: [(k: Int, coefficient: (ParameterID) -> Float)],
        keep: (ParameterID) -> Float = { _ in 1 }
    ) {
        for id in trainable {
            let factor = keep(id), streams = terms.map { (stream(step: step, k: $0.k, id: id), $0.coefficient(id)) }
            store.update(id) { w in
                nonisolated(unsafe) let p = w.baseAddress!  // tasks own disjoint ranges
                let rng = self.rng
                Parallel.forEachChunk(w.count, grain: 1 << 15) { range in
                    for (t, (stream, c)) in streams.enumerated() {
                        rng.withNormals(stream: stream, range: range) { r, z in
                            let q = p + r.lowerBound
                            if t == 0 && factor != 1 {
                                for i in 0..<r.count { q[i] = q[i] * factor + c * z[i] }
                            } else {
                                for i in 0..<r.count { q[i] += c * z[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// θ ← θ + scale·ε·z_k for perturbation `k` of `step`.
    public func perturb(_ store: any ParameterStore, step: Int, k: Int = 0, scale: Float) {
        let c = scale * epsilon
        pass(store, step: step, terms: [(k, { _ in c })])
    }

    /// θ + scale·ε·z_k of `step` as the model reads its weights, the stored weights unchanged.
    public func readPerturbation(step: Int, k: Int, scale: Float) -> WeightPerturbation {
        let trainable = Set(self.trainable)
        return WeightPerturbation(rng: rng, scale: scale * epsilon) { id in
            trainable.contains(id) ? self.stream(step: step, k: k, id: id) : nil
        }
    }

    /// One MeZO step: n SPSA estimates on the step's objective, then the update.
    ///
    /// On an fp32 store θ is perturbed in place (+εz, −2εz, +εz, as MeZO's code). On any other store (bf16,
    /// where rounding would not restore θ) the perturbation is formed as the weights are read for each GEMM,
    /// so the stored weights change only in the update.
    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate lr: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        let store = model.store, inPlace = store is FP32ParameterStore
        var reported = LossResult(sum: 0, count: 0), g = [Float](repeating: 0, count: perturbations)
        defer { model.perturbation = nil }
        for k in 0..<perturbations {
            func loss(_ sign: Float) throws -> LossResult {
                if inPlace {
                    perturb(store, step: step, k: k, scale: sign == 1 ? 1 : -2)
                } else {
                    model.perturbation = readPerturbation(step: step, k: k, scale: sign)
                }
                return try inputs.objective()
            }
            let plus = try loss(1), minus = try loss(-1)
            model.perturbation = nil
            g[k] = (Float(plus.mean) - Float(minus.mean)) / (2 * epsilon)
            if k == 0 { reported = plus }
            if inPlace, perturbations > 1 || !g[k].isFinite { perturb(store, step: step, k: k, scale: 1) }
        }
        let estimate = g.reduce(0) { $0 + abs(Double($1)) } / Double(perturbations)
        guard
            try nonFinite.admit(
                loss: reported.mean, gradientNorm: g.allSatisfy(\.isFinite) ? estimate : .nan, step: step)
        else {
            return MethodStep(loss: reported, gradientNorm: estimate, skipped: true)  // θ restored above
        }
        let keep = { (id: ParameterID) in 1 - lr * self.groups.weightDecay(for: self.layout.parameters[id].role) }
        if perturbations == 1 {  // restore (in place) and update in one pass: p ← (p + εz)·keep − η g z
            let (eps, g0) = (inPlace ? epsilon : 0, g[0])
            pass(store, step: step, terms: [(0, { id in keep(id) * eps - lr * g0 })], keep: keep)
        } else {
            let n = Float(perturbations)
            pass(store, step: step, terms: g.enumerated().map { k, gk in (k, { _ in -lr * gk / n }) }, keep: keep)
        }
        return MethodStep(loss: reported, gradientNorm: estimate)
    }
}
