import Llama
import Methods
import TensorCore

/// GaLore: Adam moments in a rank-r subspace of each block matrix's gradient, refreshed by SVD every T steps.
public enum GaLoreDefinition: LowRankDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        /// r, the subspace's rank; T, steps between refreshes; α, the scale of the projected-back step.
        public var rank = 128, updateInterval = 200
        public var scale: Float = 0.25
        /// randomized or full SVD.
        public var svd = "randomized"
        /// Carry the moments into a new subspace.
        public var transferMoments = false
        public init() {}

        enum CodingKeys: String, CodingKey {
            case rank, updateInterval = "update_interval", scale, svd, transferMoments = "transfer_moments"
        }
    }
    public static let name = "galore"
    public static let summary = "GaLore, Adam in a fixed-rank gradient subspace (SVD every update_interval steps)"
    public static let defaults = Settings()
    public static let catalogSettings = ["method.fused=true", "optimizer.clip=0"]

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        try setCommon(s.scale, s.svd, s.transferMoments, on: &o)
        o.lowRank.policy = .fixed(rank: s.rank, interval: s.updateInterval)
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        var s = Settings()
        (s.rank, s.scale, s.svd) = (o.lowRank.maxRank, o.lowRank.scale, o.lowRank.decomposition.rawValue)
        s.transferMoments = o.lowRank.transferMoments
        if case .fixed(_, let interval) = o.lowRank.policy { s.updateInterval = interval }
        return s
    }
}

/// AdaRankGrad: GaLore's subspace at the smallest rank that holds `energy` of the gradient, refreshed when it
/// captures less than `capture` of it, moments carried across.
public enum AdaRankGradDefinition: LowRankDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        /// The largest rank, and the most steps between refreshes.
        public var rank = 128, updateInterval = 200
        public var scale: Float = 0.25
        public var svd = "randomized"
        public var transferMoments = false
        /// The smallest rank, the energy a rank must hold, the capture below which the subspace is refreshed, and
        /// the fewest steps between refreshes (defaults: `LowRankAdam.Settings.Policy.adaptiveDefaults`).
        public var minRank = LowRankAdam.Settings.Policy.adaptiveDefaults.minRank
        public var energy = Float(LowRankAdam.Settings.Policy.adaptiveDefaults.energy)
        public var capture = Float(LowRankAdam.Settings.Policy.adaptiveDefaults.capture)
        public var minInterval = LowRankAdam.Settings.Policy.adaptiveDefaults.minInterval
        public init() {}

        enum CodingKeys: String, CodingKey {
            case rank, updateInterval = "update_interval", scale, svd, transferMoments = "transfer_moments"
            case minRank = "min_rank", energy, capture, minInterval = "min_interval"
        }
    }
    public static let name = "adarankgrad"
    public static let summary = "AdaRankGrad, Adam in an adaptive-rank gradient subspace"
    public static let defaults = Settings()
    public static let catalogSettings = ["method.fused=true", "optimizer.clip=0"]

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        try setCommon(s.scale, s.svd, s.transferMoments, on: &o)
        o.lowRank.policy = .adaptive(
            minRank: s.minRank, maxRank: s.rank, energy: s.energy, capture: s.capture,
            minInterval: s.minInterval, maxInterval: s.updateInterval)
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        var s = Settings()
        (s.scale, s.svd) = (o.lowRank.scale, o.lowRank.decomposition.rawValue)
        s.transferMoments = o.lowRank.transferMoments
        if case .adaptive(let lo, let hi, let energy, let capture, let tMin, let tMax) = o.lowRank.policy {
            (s.minRank, s.rank, s.energy, s.capture) = (lo, hi, energy, capture)
            (s.minInterval, s.updateInterval) = (tMin, tMax)
        }
        return s
    }
}

/// What GaLore and AdaRankGrad share: LowRankAdam as the optimizer, its validation and its memory.
public protocol LowRankDefinition: OptimizerDefinition {}

extension LowRankDefinition {
    public static var settingNames: [String: String] { ["interval": "update_interval"] }

    static func setCommon(_ scale: Float, _ svd: String, _ transfer: Bool, on o: inout TrainingOptions) throws {
        let decomposition = try RunConfig.choice(
            LowRankAdam.Settings.Decomposition.self, svd, key: "method.svd", noun: "decomposition")
        (o.lowRank.scale, o.lowRank.decomposition, o.lowRank.transferMoments) = (scale, decomposition, transfer)
    }

    public static func validate(_ o: TrainingOptions) throws {  // ranks against shapes: when the optimizer is built
        try o.lowRank.validate()
    }

    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) throws -> any Optimizer {
        try LowRankAdam(
            layout: model.layout, settings: o.lowRank, groups: o.groups, seed: o.seed, ledger: model.ledger)
    }

    /// At the largest rank: AdaRankGrad's ranks only fall from there.
    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c)
        return [
            .optimizerState: LowRankAdam.stateBytes(layout, rank: o.lowRank.maxRank, groups: o.groups),
            .workspace: LowRankAdam.workspaceBytes(layout, settings: o.lowRank),
        ]
    }

    public static func periodicWork(
        _ method: any FineTuningMethod, model: LlamaModel, options: TrainingOptions, inputs: StepInputs
    ) throws -> PeriodicWork? {
        guard let lowRank = optimizer(of: method) as? LowRankAdam else { return nil }
        var work = PeriodicWork(
            secondsPerStep: nil,
            details: ["refreshes": Double(lowRank.refreshes), "decomposition_seconds": lowRank.decompositionSeconds],
            report: String(
                format: "subspace refreshes: %d in %.3f s of decompositions (the warm-up step refreshes every matrix)",
                lowRank.refreshes, lowRank.decompositionSeconds))
        if case .fixed(_, let interval) = options.lowRank.policy, lowRank.refreshes > 0 {
            // one refresh of every matrix (the mean over those the steps made), once per interval
            let perStep =
                lowRank.decompositionSeconds * Double(lowRank.ranks.count) / Double(lowRank.refreshes)
                / Double(interval)
            work.secondsPerStep = perStep
            work.report += String(
                format: "\na refresh of every matrix every %d steps: %.3f s per step", interval, perStep)
        }
        return work
    }

    public static func label(_ o: TrainingOptions) -> String {
        name + (o.isFused ? " fused" : "") + " rank \(o.lowRank.maxRank)"
    }
}

extension TrainingOptions.Method {
    public static let galore = Self(GaLoreDefinition.self)
    public static let adarankgrad = Self(AdaRankGradDefinition.self)
}
