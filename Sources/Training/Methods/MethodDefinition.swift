import Llama
import Methods
import TensorCore

/// Everything LeanTune knows about one fine-tuning method, in one type: its name, the `method:` settings it
/// reads, its validation, its factory, its memory plan and its periodic work. The trainer, the memory plan, the
/// catalog, `bench` and the help text read ``MethodRegistry``; adding a method is its definition and one line there.
public protocol MethodDefinition: Sendable {
    /// The keys this method reads from the `method:` section, with their defaults: the coding keys are the YAML keys.
    associatedtype Settings: Codable, Equatable, Sendable

    /// `method.name` and the value of `--method`.
    static var name: String { get }
    /// One line for help text and the catalog.
    static var summary: String { get }
    /// Forward passes only (no gradient, no saved activations): `method.checkpointing` does not apply.
    static var isZerothOrder: Bool { get }
    /// Whether the method updates each tensor inside backward: always, never, or as `method.fused` says.
    static var fusion: Fusion { get }
    /// The settings when `method:` sets none.
    static var defaults: Settings { get }
    /// The overrides (`section.key=value`) that `bench methods` and `estimate --budget` run it with, besides
    /// `method.name`.
    static var catalogSettings: [String] { get }

    /// Writes `settings` into `options` (the form checkpoints keep). Errors name the keys of `Settings`.
    static func apply(_ settings: Settings, to options: inout TrainingOptions) throws
    /// The settings `options` hold (the inverse of ``apply(_:to:)``).
    static func settings(of options: TrainingOptions) -> Settings
    /// What `options` ask of this method that cannot work, beyond the checks every method shares.
    static func validate(_ options: TrainingOptions) throws
    /// The store the weights train in when `train.weights` is auto (nil: the shared rule).
    static func weightFormat(_ options: TrainingOptions) -> TrainingOptions.WeightFormat?
    /// The method with its state allocated for `model`; `stepsPerEpoch` sets schedules counted in epochs.
    static func make(_ options: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int) throws -> any FineTuningMethod
    /// Bytes per ledger category of a step, predicted from shapes (the bf16 GEMM scratch is added by ``MemoryPlan``).
    static func memory(_ config: LlamaConfig, options: TrainingOptions, threads: Int) -> [MemoryCategory: Int]
    /// Whether backward forms the block matrices' weight gradients in bf16 compute (LSP-Offload compresses the
    /// factors instead), for the bf16 scratch of the plan.
    static func formsWeightGradients(_ options: TrainingOptions) -> Bool
    /// The work it does every so many steps, outside a step, timed once (for `bench`); nil when none.
    static func periodicWork(
        _ method: any FineTuningMethod, model: LlamaModel, options: TrainingOptions, inputs: StepInputs
    ) throws -> PeriodicWork?
    /// What the timed steps' details (one dictionary per step) say about the method, for `bench`; nil when nothing.
    static func stepSummary(_ options: TrainingOptions, steps: [[String: Double]]) -> PeriodicWork?
    /// A short label of a configured run, e.g. "galore rank 128".
    static func label(_ options: TrainingOptions) -> String
    /// The `method:` key of each setting its Methods type names in errors (``MethodError/setting``) where the key is
    /// not the setting's name in snake case.
    static var settingNames: [String: String] { get }
}

/// When a method updates each tensor's weights: inside backward, or after it from a full gradient.
public enum Fusion: Sendable {
    case never, optional, always
}

/// Work a method does every so many steps, timed once.
public struct PeriodicWork: Sendable {
    /// Its seconds spread over the steps between two runs of it; nil when it has no fixed interval.
    public var secondsPerStep: Double?
    /// Numbers for the benchmark table.
    public var details: [String: Double]
    /// What it did, for the console.
    public var report: String
}

extension MethodDefinition {
    public static var isZerothOrder: Bool { false }
    public static var fusion: Fusion { .optional }
    public static var catalogSettings: [String] { [] }
    public static func validate(_ options: TrainingOptions) throws {}
    public static func weightFormat(_ options: TrainingOptions) -> TrainingOptions.WeightFormat? { nil }
    public static func formsWeightGradients(_ options: TrainingOptions) -> Bool { true }
    public static func periodicWork(
        _ method: any FineTuningMethod, model: LlamaModel, options: TrainingOptions, inputs: StepInputs
    ) throws -> PeriodicWork? { nil }
    public static func stepSummary(_ options: TrainingOptions, steps: [[String: Double]]) -> PeriodicWork? { nil }
    public static func label(_ options: TrainingOptions) -> String {
        name + (options.isFused && fusion == .optional ? " fused" : "")
    }
    public static var settingNames: [String: String] { [:] }

    /// `error` with the key path of its setting, as a configuration names it (`method.min_rank must be …`).
    static func error(_ error: MethodError) -> TrainingError {
        guard let setting = error.setting else { return TrainingError(message: error.message) }
        let key =
            settingNames[setting]
            ?? setting.reduce(into: "") { key, c in key += c.isUppercase ? "_" + c.lowercased() : String(c) }
        return TrainingError(message: "method.\(key) \(error.message)")
    }
}

extension MethodDefinition where Settings == NoSettings {
    public static var defaults: NoSettings { NoSettings() }
    public static func apply(_ settings: NoSettings, to options: inout TrainingOptions) throws {}
    public static func settings(of options: TrainingOptions) -> NoSettings { NoSettings() }
}

/// The settings of a method that reads no `method:` key of its own.
public struct NoSettings: Codable, Equatable, Sendable {
    public init() {}
}

/// A method that keeps a full gradient or fuses its updates into backward around one ``Optimizer``.
public protocol OptimizerDefinition: MethodDefinition {
    /// The optimizer with its state allocated for `model`.
    static func optimizer(_ options: TrainingOptions, model: LlamaModel) throws -> any Optimizer
    /// The optimizer's state and scratch bytes for a model of shape `config`.
    static func stateBytes(_ config: LlamaConfig, options: TrainingOptions) -> [MemoryCategory: Int]
}

extension OptimizerDefinition {
    public static func make(
        _ options: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int
    ) throws
        -> any FineTuningMethod
    {
        let optimizer = try optimizer(options, model: model)
        return options.isFused
            ? FusedGradientMethod(
                optimizer: optimizer, store: model.store, checkpointing: options.checkpointing, ledger: model.ledger)
            : AccumulatedGradientMethod(
                optimizer: optimizer, clipNorm: options.clipNorm, checkpointing: options.checkpointing,
                ledger: model.ledger)
    }

    public static func memory(_ config: LlamaConfig, options: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        MemoryPlan.gradientPass(config, options: options, threads: threads).merging(
            stateBytes(config, options: options), uniquingKeysWith: +)
    }

    /// The optimizer inside a gradient method built by ``make(_:model:stepsPerEpoch:)``.
    static func optimizer(of method: any FineTuningMethod) -> (any Optimizer)? {
        (method as? AccumulatedGradientMethod)?.optimizer ?? (method as? FusedGradientMethod)?.optimizer
    }
}
