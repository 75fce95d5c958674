import Foundation
import Llama
import TensorCore

/// Adam in a low-rank subspace of each block matrix's gradient: GaLore (Zhao et al. 2024, as galore_torch's
/// GaLoreAdamW) with a fixed rank refreshed every T steps, or AdaRankGrad (Refael et al. 2024) whose rank follows
/// the gradient's energy and whose subspace is refreshed when it stops capturing the gradient.
///
/// For a block weight W (m×n) with gradient G: the side with fewer values is projected (m < n: P is m×r and
/// R = Pᵀ·G is r×n; otherwise P holds r rows of Vᵀ and R = G·Pᵀ is m×r), Adam runs on R, and W moves by
/// α·P·N (or α·N·P) with N Adam's normalised step. Optimizer state per matrix: P plus two moments of R's shape,
/// m·r + 2·n·r floats for m ≤ n. Embeddings, norms and the head use plain AdamW. Adam's ε sits where
/// torch.optim.AdamW puts it (outside the bias correction of v), as in this package's AdamW, so that a full-rank
/// identity projector is AdamW exactly; galore_torch's HF form differs by ε·√(1 − β₂ᵏ).
public final class LowRankAdam: Optimizer {
    public struct Settings: Sendable, Codable, Equatable {
        public enum Decomposition: String, Sendable, Codable, CaseIterable {
            /// Randomized range finder: rank + 8 columns, two power iterations.
            case randomized
            /// LAPACK's full SVD (what galore_torch does).
            case full
        }

        /// When the subspace is chosen anew, and with which rank.
        public enum Policy: Sendable, Codable, Equatable {
            /// GaLore: rank r, refreshed every `interval` steps of the tensor.
            case fixed(rank: Int, interval: Int)
            /// AdaRankGrad: the smallest rank in minRank...maxRank whose SVD energy reaches `energy` of ‖G‖²; refreshed
            /// when the subspace captures less than `capture` of ‖G‖² or after `maxInterval` steps, never before
            /// `minInterval`.
            case adaptive(minRank: Int, maxRank: Int, energy: Float, capture: Float, minInterval: Int, maxInterval: Int)

            /// AdaRankGrad's defaults here (the configuration's too), set by the ablation in
            /// `experiments/results/lowrank-pretrain.md`.
            public static let adaptiveDefaults = (minRank: 4, energy: 0.9, capture: 0.5, minInterval: 10)

            /// AdaRankGrad with the defaults below rank `maxRank`.
            public static func adaRankGrad(maxRank: Int, maxInterval: Int = 200) -> Policy {
                let d = adaptiveDefaults
                return .adaptive(
                    minRank: d.minRank, maxRank: maxRank, energy: Float(d.energy), capture: Float(d.capture),
                    minInterval: d.minInterval,
                    maxInterval: maxInterval)
            }
        }

        public var policy = Policy.fixed(rank: 128, interval: 200)
        /// α, the scale of the projected-back step (GaLore's pretraining scripts: 0.25).
        public var scale: Float = 0.25
        public var decomposition = Decomposition.randomized
        /// Carry the moments into a new subspace (M ← R·M, V ← (R⊙R)·V with R = P_newᵀ·P_old). GaLore keeps them
        /// as they are (its issue #54); AdaRankGrad always transfers.
        public var transferMoments = false
        public var beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-6

        public init() {}

        /// The rank of a fixed policy, the largest of an adaptive one.
        public var maxRank: Int {
            switch policy {
            case .fixed(let rank, _): rank
            case .adaptive(_, let maxRank, _, _, _, _): maxRank
            }
        }

        /// Settings out of range, found before any weight is loaded.
        public func validate() throws {
            switch policy {
            case .fixed(let rank, let interval):
                guard rank >= 1 else { throw MethodError(setting: "rank", message: "must be ≥ 1, got \(rank)") }
                guard interval >= 1 else {
                    throw MethodError(setting: "interval", message: "(T) must be ≥ 1 step, got \(interval)")
                }
            case .adaptive(let lo, let hi, let energy, let capture, let tMin, let tMax):
                guard lo >= 1, lo <= hi else {
                    throw MethodError(setting: "minRank", message: "must be in 1...the largest rank (\(hi)), got \(lo)")
                }
                guard energy > 0, energy <= 1 else {
                    throw MethodError(setting: "energy", message: "(η_th) must be in (0, 1], got \(energy)")
                }
                guard capture > 0, capture <= 1 else {
                    throw MethodError(setting: "capture", message: "(ρ) must be in (0, 1], got \(capture)")
                }
                guard tMin >= 1, tMax >= tMin else {
                    throw MethodError(
                        setting: "minInterval",
                        message: "must be ≥ 1 and at most the update interval, got \(tMin) and \(tMax)")
                }
            }
            guard scale > 0, scale.isFinite else {
                throw MethodError(setting: "scale", message: "(α) must be > 0, got \(scale)")
            }
        }

        /// A rank larger than a block matrix of `layout` allows.
        func check(_ layout: ParameterLayout) throws {
            for info in layout.parameters where info.role.isBlockMatrix && maxRank > info.shape.min()! {
                throw MethodError(
                    setting: "rank",
                    message: """
                        \(maxRank) exceeds the smaller side of \(info.name) \(info.shape); choose a rank ≤ \
                        \(info.shape.min()!)
                        """
                )
            }
        }
    }

    public let layout: ParameterLayout
    public var groups: ParameterGroups
    public let settings: Settings
    private let ledger: MemoryLedger
    private let rng: Philox
    private var subspaces: [ParameterID: Subspace] = [:]
    private let rest: TensorAdamW
    /// Refreshes, failed decompositions (the old projector was kept) and seconds spent in decompositions so far.
    public private(set) var refreshes = 0, failures = 0, decompositionSeconds = 0.0

    public init(
        layout: ParameterLayout, settings: Settings, groups: ParameterGroups, seed: UInt64,
        ledger: MemoryLedger = .shared
    ) throws {
        try settings.validate()
        try settings.check(layout)
        self.layout = layout
        self.settings = settings
        self.groups = groups
        self.ledger = ledger
        rng = Philox(seed: seed, domain: .lowRankSketch)
        for (id, info) in layout.parameters.enumerated() where info.role.isBlockMatrix && !groups.isFrozen(info.role) {
            subspaces[id] = Subspace(rows: info.shape[0], columns: info.shape[1], ledger: ledger)
        }
        rest = TensorAdamW(
            layout,
            tensors: layout.parameters.indices.filter {
                !layout.parameters[$0].role.isBlockMatrix && !groups.isFrozen(layout.parameters[$0].role)
            },
            beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, ledger: ledger)
    }

    /// Optimizer-state floats of a block matrix at rank r: the projector on the smaller side and two moments on the
    /// larger, m·r + 2·n·r for m ≤ n.
    public static func projectedFloats(rows: Int, columns: Int, rank: Int) -> Int {
        rank * (min(rows, columns) + 2 * max(rows, columns))
    }

    /// Optimizer-state bytes for `layout` when every block matrix has `rank`: the formula of
    /// ``projectedFloats(rows:columns:rank:)`` plus AdamW's two moments for the rest; frozen tensors hold none.
    public static func stateBytes(_ layout: ParameterLayout, rank: Int, groups: ParameterGroups) -> Int {
        4
            * layout.parameters.reduce(0) { total, info in
                total
                    + (groups.isFrozen(info.role)
                        ? 0
                        : info.role.isBlockMatrix
                            ? projectedFloats(rows: info.shape[0], columns: info.shape[1], rank: rank) : 2 * info.count)
            }
    }

    /// Bytes beside the state at the peak of an update of a block matrix, the largest over `layout`: the projected
    /// gradient, then either Adam's step of its shape or a refresh (the decomposition's scratch and the new projector
    /// before the old one is freed).
    public static func workspaceBytes(_ layout: ParameterLayout, settings: Settings) -> Int {
        let r = settings.maxRank
        return 4
            * (layout.parameters.filter { $0.role.isBlockMatrix }.map { info -> Int in
                let (m, n) = (info.shape[0], info.shape[1]), projected = r * max(m, n)
                let decomposition =
                    settings.decomposition == .full
                    ? SVD.fullScratchFloats(rows: m, columns: n)
                    : SVD.randomizedScratchFloats(rows: m, columns: n, rank: r)
                return projected + max(projected, decomposition + r * min(m, n))
            }.max() ?? 0)
    }

    /// Current rank of each block matrix (0 before its first step).
    public var ranks: [ParameterID: Int] { subspaces.mapValues(\.rank) }

    public var state: [StateTensor] {
        layout.parameters.enumerated().flatMap { id, info -> [StateTensor] in
            guard let s = subspaces[id] else { return rest.state(id, name: info.name) }
            return [
                StateTensor("lowrank.counters." + info.name, s.counters),
                StateTensor("lowrank.projector." + info.name, s.projector),
                StateTensor("lowrank.m." + info.name, s.m), StateTensor("lowrank.v." + info.name, s.v),
            ]
        }
    }

    /// Sizes every subspace for the ranks a checkpoint holds (its projectors' sizes), before the checkpoint is read.
    public func prepareRestore(counts: [String: Int]) throws {
        for (id, s) in subspaces {
            let name = layout.parameters[id].name
            guard let count = counts["lowrank.projector." + name], count % s.side == 0,
                count / s.side <= settings.maxRank
            else {
                throw MethodError(message: "the checkpoint has no projector of \(name) for rank ≤ \(settings.maxRank)")
            }
            s.resize(rank: count / s.side)
        }
    }

    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        let keep = 1 - lr * weightDecay(id)
        guard let s = subspaces[id] else {  // a tensor without state of either kind is frozen
            if rest.contains(id) {
                rest.update(id, weights: weights, gradient: gradient, learningRate: lr, keep: keep, step: step)
            }
            return
        }
        // AdaRankGrad's trigger needs this step's projection; GaLore's is a step count, so it projects once, after.
        var projected = s.rank > 0 && isAdaptive ? s.project(gradient) : nil
        if refreshIsDue(s, gradient, projected) {
            refresh(id, s, gradient, step: step)
            projected = nil
        }
        if projected == nil, s.rank > 0 { projected = s.project(gradient) }
        guard let projected else { return }  // no subspace yet (its first decomposition failed): counted, no update
        s.sinceRefresh += 1
        s.steps += 1
        let rule = AdamW.Rule(
            beta1: settings.beta1, beta2: settings.beta2, epsilon: settings.epsilon, learningRate: lr, keep: 1,
            step: s.steps)
        let direction = AlignedBuffer<Float>(count: projected.count, category: .workspace, ledger: ledger)
        nonisolated(unsafe) let (d, g, m, v) = (direction.pointer, projected.pointer, s.m.pointer, s.v.pointer)
        Parallel.forEachChunk(projected.count, grain: 1 << 15) { r in rule.apply(d, g, m, v, r) }  // d = −η̂·N
        if keep != 1 { Vector.scale(weights.baseAddress!, count: weights.count, by: keep) }
        s.addBack(direction.pointer, scale: settings.scale, into: weights.baseAddress!)
    }

    /// Whether `s` needs a new subspace before this step's update.
    private func refreshIsDue(_ s: Subspace, _ g: UnsafePointer<Float>, _ projected: AlignedBuffer<Float>?) -> Bool {
        guard s.rank > 0 else { return true }
        switch settings.policy {
        case .fixed(_, let interval): return s.steps > 0 && s.steps % interval == 0
        case .adaptive(_, _, _, let capture, let tMin, let tMax):
            guard let projected else { return true }
            guard s.sinceRefresh >= tMin else { return false }
            if s.sinceRefresh >= tMax { return true }
            let total = Double(Vector.sumOfSquares(g, s.rows * s.columns))
            return total > 0
                && Double(Vector.sumOfSquares(projected.pointer, projected.count)) < Double(capture) * total
        }
    }

    /// A new subspace for `s` from the SVD of g; on failure the old one stays and the failure is counted.
    private func refresh(_ id: ParameterID, _ s: Subspace, _ g: UnsafePointer<Float>, step: Int) {
        let start = monotonicNanoseconds()
        defer { decompositionSeconds += Double(monotonicNanoseconds() - start) * 1e-9 }
        let target = settings.maxRank, total = Double(Vector.sumOfSquares(g, s.rows * s.columns))
        guard total.isFinite else {  // LAPACK on NaN or inf: keep what there is
            failures += 1
            return
        }
        let svd: SVDResult
        do {
            switch settings.decomposition {
            case .full: svd = try SVD.full(g, rows: s.rows, columns: s.columns, ledger: ledger)
            case .randomized:
                svd = try SVD.randomized(
                    g, rows: s.rows, columns: s.columns, rank: target, generator: rng,
                    stream: UInt64(step) << 24 | UInt64(id), ledger: ledger)
            }
        } catch {
            failures += 1
            return
        }
        var rank = target
        if case .adaptive(let lo, let hi, let energy, _, _, _) = settings.policy {
            var captured = 0.0
            rank = hi
            for r in 1...hi {
                captured += Double(svd.s[r - 1]) * Double(svd.s[r - 1])
                if r >= lo, captured >= Double(energy) * total {
                    rank = r
                    break
                }
            }
        }
        s.replace(with: svd, rank: rank, transfer: settings.transferMoments || isAdaptive)
        refreshes += 1
    }

    /// Installs the top `rank` of `svd` as parameter `id`'s subspace (tests: e.g. an identity projector).
    func install(_ svd: SVDResult, rank: Int, for id: ParameterID) {
        subspaces[id]!.replace(with: svd, rank: rank, transfer: settings.transferMoments || isAdaptive)
    }

    /// Parameter `id`'s subspace.
    func subspace(_ id: ParameterID) -> Subspace? { subspaces[id] }

    private var isAdaptive: Bool { if case .adaptive = settings.policy { true } else { false } }

    /// Mean rank over block matrices, refreshes, failures, decomposition seconds and state bytes, for the training log.
    public var diagnostics: [String: Double] {
        let r = subspaces.values.map(\.rank)
        let bytes =
            subspaces.values.reduce(0) { $0 + 4 * ($1.projector.count + $1.m.count + $1.v.count) }
            + rest.bytes
        return [
            "mean_rank": Double(r.reduce(0, +)) / Double(max(1, r.count)), "refreshes": Double(refreshes),
            "svd_failures": Double(failures), "svd_seconds": decompositionSeconds, "state_bytes": Double(bytes),
        ]
    }
}
