import Llama
import TensorCore

/// DiZO (Tan et al., 2025): MeZO steps, and every κ steps a zeroth-order search for one scale per
/// projected tensor, θ_l ← θ0_l + (γ_l / ‖Δ_l‖)·Δ_l with Δ_l = θ_l − θ0_l, so that layers move by
/// different amounts. Each round starts at γ_l = ‖Δ_l‖ (ratio 1), runs K SPSA steps on γ (one loss
/// difference shared by all tensors, on batches of a separate data stream) and keeps every ratio in
/// [1 − τ, 1 + τ]. Anchors θ0 are kept for the projected tensors only. With nothing projected, DiZO is MeZO.
public final class DiZO: FineTuningMethod {
    /// Which tensors are projected.
    public enum ProjectedSet: String, Sendable, Codable, CaseIterable {
        /// k and v (the official code's choice on OPT).
        case kv
        /// q and v (the paper's description).
        case qv
        /// q, k, v and o.
        case attention
        /// every block linear: q, k, v, o, gate, up, down.
        case allLinear = "all-linear"
        /// nothing: plain MeZO.
        case none

        public func contains(_ role: ParameterRole) -> Bool {
            switch self {
            case .kv: role == .key || role == .value
            case .qv: role == .query || role == .value
            case .attention: [.query, .key, .value, .output].contains(role)
            case .allLinear: role.isBlockMatrix
            case .none: false
            }
        }
    }

    /// κ, K, τ, ε_p, μ of §2.3 (defaults: the official code's).
    public struct Projection: Sendable, Codable, Equatable {
        public var set: ProjectedSet = .kv
        public var interval = 50
        public var iterations = 10
        public var clip: Float = 0.2
        public var epsilon: Float = 0.1
        public var stepSize: Float = 2.0
        public init() {}
    }

    public let mezo: MeZO
    public let projection: Projection
    /// The projected tensors and their anchors θ0 (copies taken when the method is made).
    public let projected: [ParameterID]
    public let anchors: [AlignedBuffer<Float>]
    let rng: Philox

    /// Copies the anchors of the projected, trainable tensors from `store`. Throws when the set matches none.
    public init(
        mezo: MeZO, projection: Projection, store: any ParameterStore, seed: UInt64, ledger: MemoryLedger = .shared
    ) throws {
        self.mezo = mezo
        self.projection = projection
        projected = mezo.trainable.filter { projection.set.contains(mezo.layout.parameters[$0].role) }
        if projection.set != .none, projected.isEmpty {
            throw MethodError(
                message:
                    """
                    DiZO: the projected set '\(projection.set.rawValue)' matches no trainable tensor; choose one of \
                    \(ProjectedSet.allCases.map(\.rawValue)) or unfreeze those tensors
                    """
            )
        }
        anchors = projected.map { id in
            let b = AlignedBuffer<Float>(
                count: mezo.layout.parameters[id].count, category: .optimizerState, ledger: ledger)
            store.withFloats(id) { w in b.pointer.update(from: w.baseAddress!, count: w.count) }
            return b
        }
        rng = Philox(seed: seed, domain: .dizo)
    }

    public var state: [StateTensor] {
        zip(projected, anchors).map { StateTensor("dizo.anchor." + mezo.layout.parameters[$0].name, $1) }
    }

    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        let r = try mezo.step(model, inputs: inputs, learningRate: learningRate, step: step, nonFinite: &nonFinite)
        if !projected.isEmpty, step % projection.interval == 0 {
            try project(model.store, round: step / projection.interval, objective: inputs.auxiliaryObjective)
        }
        return r
    }

    /// ‖θ_l − θ0_l‖ of each projected tensor (accumulated in Double).
    public func distances(_ store: any ParameterStore) -> [Double] {
        zip(projected, anchors).map { id, anchor in
            store.withFloats(id) { w in
                var sum = 0.0
                for i in 0..<w.count { let d = Double(w[i] - anchor.pointer[i]); sum += d * d }
                return sum.squareRoot()
            }
        }
    }

    /// θ_l ← θ0_l + ratio_l·(θ_l − θ0_l) for every projected tensor.
    public func scale(_ store: any ParameterStore, ratios: [Float]) {
        for (j, id) in projected.enumerated() where ratios[j] != 1 {
            let a = ratios[j], anchor = anchors[j].pointer
            store.update(id) { w in
                nonisolated(unsafe) let (p, o) = (w.baseAddress!, anchor)  // tasks own disjoint ranges
                Parallel.forEachChunk(w.count, grain: 1 << 15) { range in
                    for i in range { p[i] = o[i] + a * (p[i] - o[i]) }
                }
            }
        }
    }

    /// One projection round (§2.2 step 10): K SPSA steps on γ, each on batch `round·K + k` of the
    /// auxiliary stream, then γ applied for good (ratios in [1 − τ, 1 + τ]). `step` runs one every κ steps.
    public func project(_ store: any ParameterStore, round: Int, objective: (Int) throws -> LossResult) throws {
        let p = projection, n = projected.count
        var gamma = [Double](repeating: 0, count: n)
        for k in 0..<p.iterations {
            let ts = distances(store)
            if k == 0 { gamma = ts }
            let z = (0..<n).map { l in  // one clipped scalar normal per tensor: |ε_p z_l| ≤ τ·ts_l
                let bound = Double(p.clip / p.epsilon) * ts[l]
                return min(max(Double(rng.normal(stream: UInt64(round), index: UInt64(k * n + l))), -bound), bound)
            }
            func ratios(_ sign: Double) -> [Float] {
                (0..<n).map { l in ts[l] > 0 ? Float((gamma[l] + sign * Double(p.epsilon) * z[l]) / (ts[l] + 1e-8)) : 1
                }
            }
            func loss(at sign: Double) throws -> Double {
                let a = ratios(sign)
                scale(store, ratios: a)
                defer { scale(store, ratios: a.map { 1 / $0 }) }  // revert (exact up to rounding, as the official code)
                return try objective(round * p.iterations + k).mean
            }
            let plus = try loss(at: 1), minus = try loss(at: -1)
            let g = (Float(plus) - Float(minus)) / (2 * p.epsilon)
            guard g.isFinite else { continue }  // a non-finite probe changes nothing
            for l in 0..<n {
                let moved = gamma[l] - Double(p.stepSize) * ts[l] * Double(g) * z[l]
                gamma[l] = min(max(moved, Double(1 - p.clip) * ts[l]), Double(1 + p.clip) * ts[l])
            }
        }
        let ts = distances(store)
        scale(store, ratios: (0..<n).map { l in ts[l] > 0 ? Float(gamma[l] / (ts[l] + 1e-8)) : 1 })
    }
}
