import Llama
import Methods
import TensorCore

/// LSP-Offload: learned sparse projectors compress each matrix's gradient to d × d; a host worker runs Adam in the
/// compressed space, overlapped with backward.
public enum LSPOffloadDefinition: MethodDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        /// d, the side of the compressed space, and r, nonzeros per projector row.
        public var size = 256, nonzeros = 4
        /// layerwise or after-backward; factors or gradient.
        public var schedule = "layerwise", compression = "factors"
        public var trainEmbeddings = false
        /// Projector learning: check every N steps on held-out batches, refit with Adam when the error ≥ the threshold.
        public var checkFrequency = 200, heldOutBatches = 2, fitIterations = 10
        public var fitLr: Float = 0.1
        public var refitThreshold = 0.5
        public init() {}

        enum CodingKeys: String, CodingKey {
            case size, nonzeros, schedule, compression, trainEmbeddings = "train_embeddings"
            case checkFrequency = "check_frequency", heldOutBatches = "held_out_batches"
            case fitIterations = "fit_iterations", fitLr = "fit_lr", refitThreshold = "refit_threshold"
        }
    }
    public static let name = "lsp-offload"
    public static let summary = "LSP-Offload, learned sparse projectors and a host-side Adam in the compressed space"
    public static let fusion = Fusion.always
    public static let defaults = Settings()
    public static let catalogSettings = ["optimizer.clip=0"]
    public static let settingNames = ["fitLearningRate": "fit_lr"]

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        let schedule = try RunConfig.choice(
            LSPOffload.Settings.Schedule.self, s.schedule, key: "method.schedule", noun: "schedule")
        let compression = try RunConfig.choice(
            LSPOffload.Settings.Compression.self, s.compression, key: "method.compression", noun: "compression")
        (o.lsp.size, o.lsp.nonzeros, o.lsp.schedule, o.lsp.compression) = (s.size, s.nonzeros, schedule, compression)
        o.lsp.trainEmbeddings = s.trainEmbeddings
        (o.lsp.checkFrequency, o.lsp.heldOutBatches, o.lsp.fitIterations) = (
            s.checkFrequency, s.heldOutBatches, s.fitIterations
        )
        (o.lsp.fitLearningRate, o.lsp.refitThreshold) = (s.fitLr, s.refitThreshold)
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        let l = o.lsp
        var s = Settings()
        (s.size, s.nonzeros, s.schedule, s.compression) = (
            l.size, l.nonzeros, l.schedule.rawValue, l.compression.rawValue
        )
        (s.trainEmbeddings, s.checkFrequency, s.heldOutBatches) = (
            l.trainEmbeddings, l.checkFrequency, l.heldOutBatches
        )
        (s.fitIterations, s.fitLr, s.refitThreshold) = (l.fitIterations, l.fitLearningRate, l.refitThreshold)
        return s
    }

    public static func validate(_ o: TrainingOptions) throws { try o.lsp.validate() }

    public static func make(
        _ o: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int
    ) throws
        -> any FineTuningMethod
    {
        try LSPOffload(
            layout: model.layout, settings: o.lsp, groups: o.groups, checkpointing: o.checkpointing, seed: o.seed,
            ledger: model.ledger)
    }

    /// Its gradients are compressed and its optimizer state lives on the host.
    public static func memory(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        var plan = MemoryPlan.gradientPass(c, options: o, threads: threads)
        plan[.gradients] = nil
        return plan.merging(
            LSPOffload.memory(ParameterLayout(c), settings: o.lsp, groups: o.groups, tokens: o.batchSize * o.maxLength),
            uniquingKeysWith: +)
    }

    /// It compresses the factors; only trained embeddings form a weight gradient.
    public static func formsWeightGradients(_ o: TrainingOptions) -> Bool { o.lsp.trainEmbeddings }

    public static func stepSummary(_ o: TrainingOptions, steps: [[String: Double]]) -> PeriodicWork? {
        func median(_ value: ([String: Double]) -> Double?) -> Double {
            let values = steps.compactMap(value).sorted()
            return values.isEmpty ? .nan : values[values.count / 2]
        }
        let m = { (key: String) in median { $0[key] } }
        let computeOnly = median { s in s["step_seconds"].flatMap { a in s["host_wait_seconds"].map { a - $0 } } }
        let step = m("step_seconds"), wait = m("host_wait_seconds"), l = o.lsp
        return PeriodicWork(
            secondsPerStep: nil, details: ["compute_only_seconds": computeOnly],
            report: String(
                format:
                    """
                    lsp-offload d %d r %d, %@ schedule, %@ compression: backward (compute side, compression included) \
                    %.3f s, waiting for the host %.3f s, host Adam %.3f s (overlap %.0f%%); compute-only step (step − \
                    wait) %.3f s, step / compute-only %.3f\nbytes per step: %.1f MiB to the host, %.1f MiB back
                    """,
                l.size, l.nonzeros, l.schedule.rawValue, l.compression.rawValue, m("compute_seconds"), wait,
                m("host_seconds"), 100 * m("overlap"), computeOnly, step / computeOnly, m("bytes_to_host") / 1_048_576,
                m("bytes_to_compute") / 1_048_576))
    }
}

extension TrainingOptions.Method {
    public static let lspOffload = Self(LSPOffloadDefinition.self)
}
