import Llama
import Methods
import TensorCore

/// QFT: every state in INT8 (dense-and-sparse weights, Lion momentum, gradients fused into backward or stacked).
public enum QFTDefinition: MethodDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        /// Fraction of each matrix's entries kept in fp32 as outliers.
        public var outlierFraction = 0.01
        /// Values per weight scale; 0 for one per row.
        public var weightBlock = 0
        /// Values per scale of the INT8 momentum and gradient stack.
        public var stateBlock = 128
        /// fused (updates inside backward) or stack (INT8 gradient stack, clipping possible).
        public var gradients = "fused"
        /// Steps between outlier reselections; 0 for once per epoch.
        public var outlierRefresh = 0
        /// Groups kept in fp32 besides the norms.
        public var fp32Modules = ["norms"]
        public init() {}

        enum CodingKeys: String, CodingKey {
            case outlierFraction = "outlier_fraction", weightBlock = "weight_block", stateBlock = "state_block"
            case gradients, outlierRefresh = "outlier_refresh", fp32Modules = "fp32_modules"
        }
    }
    public static let name = "qft"
    public static let summary = "QFT, every state in INT8 (dense-and-sparse weights, Lion momentum, INT8 gradients)"
    public static let fusion = Fusion.never
    public static let defaults = Settings()
    public static let catalogSettings = ["optimizer.clip=0"]
    public static let settingNames = ["blockSize": "weight_block", "refreshInterval": "outlier_refresh"]

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        let mode = try RunConfig.choice(
            QFT.GradientMode.self, s.gradients, key: "method.gradients", noun: "gradient mode")
        o.qft.gradients = mode
        (o.qft.weights.outlierFraction, o.qft.weights.blockSize) = (s.outlierFraction, s.weightBlock)
        (o.qft.stateBlock, o.qft.refreshInterval) = (s.stateBlock, s.outlierRefresh)
        o.qft.weights.fp32Groups = Set(try s.fp32Modules.map { try RunConfig.group($0, "method.fp32_modules") })
            .union([.norms])
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        var s = Settings()
        (s.outlierFraction, s.weightBlock) = (o.qft.weights.outlierFraction, o.qft.weights.blockSize)
        (s.stateBlock, s.outlierRefresh, s.gradients) = (
            o.qft.stateBlock, o.qft.refreshInterval, o.qft.gradients.rawValue
        )
        s.fp32Modules = o.qft.weights.fp32Groups.map(\.rawValue).sorted()
        return s
    }

    public static func validate(_ o: TrainingOptions) throws {
        try o.qft.validate()
        if o.weights != .auto {
            throw TrainingError(
                message: "qft keeps its weights in INT8 dense-and-sparse form: drop train.weights (or set it to auto)")
        }
        if o.qft.gradients == .fused, o.clipNorm != nil {
            throw TrainingError(
                message:
                    """
                    qft with method.gradients: fused updates each tensor inside backward, so the global gradient norm \
                    is never known: drop gradient clipping (optimizer.clip: 0) or use method.gradients: stack (INT8 \
                    gradient stack, +1 byte per parameter)
                    """
            )
        }
        if o.accumulation > 1 {
            throw TrainingError(
                message:
                    """
                    qft updates from one batch's gradients (fused, or one INT8 stack): set train.accumulate to 1 and \
                    raise train.batch instead
                    """
            )
        }
    }

    public static func weightFormat(_ o: TrainingOptions) -> TrainingOptions.WeightFormat? { .int8 }

    public static func make(
        _ o: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int
    ) throws
        -> any FineTuningMethod
    {
        guard let store = model.store as? DenseSparseStore else {
            throw TrainingError(
                message:
                    """
                    qft needs the model's weights in INT8 dense-and-sparse form: build the model with \
                    Trainer.model(_:for:)
                    """
            )
        }
        return try QFT(
            store: store, settings: o.qft, groups: o.groups, clipNorm: o.clipNorm, checkpointing: o.checkpointing,
            seed: o.seed, stepsPerEpoch: stepsPerEpoch, ledger: model.ledger)
    }

    public static func memory(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c)
        return MemoryPlan.pass(c, options: o, threads: threads).merging(
            QFT.stateBytes(
                layout, settings: o.qft,
                fusedGradientFloats: MemoryPlan.fusedGradientPeak(layout, tied: c.tiedEmbeddings)),
            uniquingKeysWith: +)
    }

    public static func periodicWork(
        _ method: any FineTuningMethod, model: LlamaModel, options: TrainingOptions, inputs: StepInputs
    ) throws -> PeriodicWork? {
        guard let qft = method as? QFT else { return nil }
        let start = monotonicNanoseconds()
        qft.store.refreshOutliers()
        let seconds = Double(monotonicNanoseconds() - start) * 1e-9
        return PeriodicWork(
            secondsPerStep: nil, details: ["outlier_refresh_seconds": seconds],
            report: String(format: "outlier refresh of every matrix (once per epoch by default): %.3f s", seconds))
    }

    public static func label(_ o: TrainingOptions) -> String { "qft (\(o.qft.gradients.rawValue) gradients)" }
}

extension TrainingOptions.Method {
    public static let qft = Self(QFTDefinition.self)
}
