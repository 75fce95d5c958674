import Llama
import Methods
import TensorCore

/// MeZO: the loss at +εz and −εz (z regenerated from a seed) gives the projected gradient; forward passes only.
public enum MeZODefinition: MethodDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        /// ε, the perturbation's scale (MeZO: 1e-3).
        public var epsilon: Float = 1e-3
        /// Perturbations averaged per step.
        public var perturbations = 1
        public init() {}
    }
    public static let name = "mezo"
    public static let summary = "MeZO, forward passes only (zeroth order)"
    public static let isZerothOrder = true
    public static let fusion = Fusion.never
    public static let defaults = Settings()

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        guard s.epsilon > 0, s.epsilon.isFinite else {
            throw TrainingError(message: "method.epsilon must be > 0 (MeZO uses 1e-3), got \(s.epsilon)")
        }
        guard (1..<4096).contains(s.perturbations) else {
            throw TrainingError(message: "method.perturbations must be in 1..<4096, got \(s.perturbations)")
        }
        (o.zerothOrder.epsilon, o.zerothOrder.perturbations) = (s.epsilon, s.perturbations)
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        var s = Settings()
        (s.epsilon, s.perturbations) = (o.zerothOrder.epsilon, o.zerothOrder.perturbations)
        return s
    }

    /// MeZO with bf16 compute keeps its weights in bf16, as its paper runs in half precision.
    public static func weightFormat(_ o: TrainingOptions) -> TrainingOptions.WeightFormat? {
        o.weights == .auto && o.precision == .bf16 ? .bf16 : nil
    }

    public static func make(
        _ o: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int
    ) throws
        -> any FineTuningMethod
    { mezo(o, model: model) }

    static func mezo(_ o: TrainingOptions, model: LlamaModel) -> MeZO {
        MeZO(
            layout: model.layout, epsilon: o.zerothOrder.epsilon, perturbations: o.zerothOrder.perturbations,
            seed: o.seed, groups: o.groups)
    }

    public static func memory(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        MemoryPlan.forwardPass(c, options: o, threads: threads)
    }
}

/// DiZO: MeZO steps, and every `interval` steps a search of per-tensor scales γ that pull the projected tensors
/// towards their starting values θ0 (kept as anchors).
public enum DiZODefinition: MethodDefinition {
    public struct Settings: Codable, Equatable, Sendable {
        public var epsilon: Float = 1e-3
        public var perturbations = 1
        /// The tensors projected: kv, qv, attention, all-linear or none.
        public var projected = "kv"
        /// Steps between projection rounds, and the search's iterations per round.
        public var interval = 50, iterations = 10
        /// γ is kept within [1 − clip_range, 1 + clip_range]; the search's finite-difference ε and step.
        public var clipRange: Float = 0.2, projectionEpsilon: Float = 0.1, projectionStep: Float = 2.0
        public init() {}

        enum CodingKeys: String, CodingKey {
            case epsilon, perturbations, projected, interval, iterations
            case clipRange = "clip_range", projectionEpsilon = "projection_epsilon"
            case projectionStep = "projection_step"
        }
    }
    public static let name = "dizo"
    public static let summary = "DiZO, MeZO with divergence-driven layer-wise projection (forward passes only)"
    public static let isZerothOrder = true
    public static let fusion = Fusion.never
    public static let defaults = Settings()

    public static func apply(_ s: Settings, to o: inout TrainingOptions) throws {
        var mezo = MeZODefinition.Settings()
        (mezo.epsilon, mezo.perturbations) = (s.epsilon, s.perturbations)
        try MeZODefinition.apply(mezo, to: &o)
        let set = try RunConfig.choice(
            DiZO.ProjectedSet.self, s.projected, key: "method.projected", noun: "projected set")
        var p = DiZO.Projection()
        (p.set, p.interval, p.iterations) = (set, s.interval, s.iterations)
        (p.clip, p.epsilon, p.stepSize) = (s.clipRange, s.projectionEpsilon, s.projectionStep)
        guard p.interval >= 1, p.iterations >= 1, p.clip > 0, p.clip < 1, p.epsilon > 0, p.stepSize > 0 else {
            throw TrainingError(
                message:
                    """
                    DiZO needs method.interval ≥ 1, method.iterations ≥ 1, 0 < method.clip_range < 1, \
                    method.projection_epsilon > 0 and method.projection_step > 0
                    """
            )
        }
        o.zerothOrder.projection = p
    }

    public static func settings(of o: TrainingOptions) -> Settings {
        let z = o.zerothOrder, p = z.projection
        var s = Settings()
        (s.epsilon, s.perturbations, s.projected) = (z.epsilon, z.perturbations, p.set.rawValue)
        (s.interval, s.iterations) = (p.interval, p.iterations)
        (s.clipRange, s.projectionEpsilon, s.projectionStep) = (p.clip, p.epsilon, p.stepSize)
        return s
    }

    public static func weightFormat(_ o: TrainingOptions) -> TrainingOptions.WeightFormat? {
        MeZODefinition.weightFormat(o)
    }

    public static func make(
        _ o: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int
    ) throws
        -> any FineTuningMethod
    {
        try DiZO(
            mezo: MeZODefinition.mezo(o, model: model), projection: o.zerothOrder.projection, store: model.store,
            seed: o.seed, ledger: model.ledger)
    }

    /// MeZO's plus the anchors of the projected, trainable tensors.
    public static func memory(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c), set = o.zerothOrder.projection.set
        var plan = MemoryPlan.forwardPass(c, options: o, threads: threads)
        plan[.optimizerState, default: 0] +=
            4
            * layout.parameters.filter { set.contains($0.role) && !o.groups.isFrozen($0.role) }.reduce(0) {
                $0 + $1.count
            }
        return plan
    }

    public static func periodicWork(
        _ method: any FineTuningMethod, model: LlamaModel, options: TrainingOptions, inputs: StepInputs
    ) throws -> PeriodicWork? {
        guard let dizo = method as? DiZO, !dizo.projected.isEmpty else { return nil }
        let start = monotonicNanoseconds()
        try dizo.project(model.store, round: 0, objective: inputs.auxiliaryObjective)
        let seconds = Double(monotonicNanoseconds() - start) * 1e-9, interval = dizo.projection.interval
        return PeriodicWork(
            secondsPerStep: seconds / Double(interval), details: ["projection_seconds": seconds],
            report: String(
                format: "projection round (%d × 2 forwards) every %d steps: %.3f s, %.3f s per step",
                dizo.projection.iterations, interval, seconds, seconds / Double(interval)))
    }
}

extension TrainingOptions.Method {
    public static let mezo = Self(MeZODefinition.self)
    public static let dizo = Self(DiZODefinition.self)
}
