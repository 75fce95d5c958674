import Datasets
import Llama
import Methods
import TensorCore

/// What a training run does.
public struct TrainingOptions: Sendable, Codable, Equatable {
    /// A registered method, by name (its ``MethodDefinition``); checkpoints store the name.
    public struct Method: RawRepresentable, Hashable, Sendable, Codable, CaseIterable, CustomStringConvertible {
        public let definition: any MethodDefinition.Type

        public init(_ definition: any MethodDefinition.Type) { self.definition = definition }
        /// The registered method named `rawValue`.
        public init?(rawValue: String) {
            guard let d = MethodRegistry.definition(named: rawValue) else { return nil }
            definition = d
        }
        public var rawValue: String { definition.name }
        public var description: String { rawValue }
        public static var allCases: [Method] { MethodRegistry.all.map(Method.init) }
        public static func == (a: Method, b: Method) -> Bool { a.rawValue == b.rawValue }
        public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

        /// Forward passes only: no gradient, no saved activations.
        public var isZerothOrder: Bool { definition.isZerothOrder }
    }

    /// MeZO's ε and perturbations per step; DiZO's projection.
    public struct ZerothOrder: Sendable, Codable, Equatable {
        public var epsilon: Float = 1e-3
        public var perturbations = 1
        public var projection = DiZO.Projection()
        public init() {}
    }

    /// How the weights are stored while training.
    public enum Weights: String, Sendable, Codable, CaseIterable {
        /// What the method's paper implies: bf16 for MeZO/DiZO computing in bf16 (MeZO runs in half precision),
        /// INT8 for QFT, fp32 master weights for the gradient methods.
        case auto, fp32, bf16
    }

    /// What a run stores its weights in, once `auto` is resolved.
    public enum WeightFormat: String, Sendable, CaseIterable {
        case fp32, bf16, int8
    }

    public var method: Method = .adamw
    /// The GEMMs' precision: bf16 operands with fp32 accumulation (where the CPU has AVX512-BF16), or fp32.
    public var precision: Precision = .fp32
    /// The weight store (``weightFormat`` resolves `auto`).
    public var weights: Weights = .auto
    public var schedule = LRSchedule(.cosine, peak: 1e-4, warmup: 0, total: 100)
    /// Weight decay (norms exempt by default), learning-rate scales and frozen groups.
    public var groups = ParameterGroups(weightDecay: 0)
    public var batchSize = 4
    /// Micro-batches whose gradients are averaged into one step (accumulate modes only).
    public var accumulation = 1
    /// Predicted positions per sequence at most.
    public var maxLength = 256
    /// Global gradient-norm clipping (accumulate modes only); nil for none.
    public var clipNorm: Double? = 1.0
    public var seed: UInt64 = 0
    public var checkpointing = false
    /// Pack several examples into each sequence (attention and positions stay within each example).
    public var packing = false
    /// Settings of the zeroth-order methods.
    public var zerothOrder = ZerothOrder()
    /// QFT's quantization and gradient settings.
    public var qft = QFT.Settings()
    /// GaLore's and AdaRankGrad's subspace settings.
    public var lowRank = LowRankAdam.Settings()
    /// LSP-Offload's projectors, host optimizer and schedule.
    public var lsp = LSPOffload.Settings()
    /// Update each tensor inside backward (no full-model gradient; no clipping, no accumulation); adamw-fused and
    /// lsp-offload imply it.
    public var fused = false

    /// The store the weights are trained in.
    public var weightFormat: WeightFormat {
        if let format = method.definition.weightFormat(self) { return format }
        switch weights {
        case .fp32, .auto: return .fp32
        case .bf16: return .bf16
        }
    }

    /// Whether updates happen inside backward.
    public var isFused: Bool {
        switch method.definition.fusion {
        case .always: true
        case .optional: fused
        case .never: false
        }
    }
    /// What a step minimises.
    public var objective: Objective = .languageModel

    /// The training loss.
    public enum Objective: Sendable, Codable, Equatable {
        /// Next-token loss on the trained tokens (for a classification task: the gold label word's).
        case languageModel
        /// MeZO's classification-style loss (`--train_as_classification`): each example's `classes`
        /// candidates are scored (mean log-likelihood of the label word), and the loss is the cross-entropy
        /// of the gold class under a softmax over the scores. Forward only: zeroth-order methods.
        case classification(classes: Int)

        /// Sequences a forward pass runs per example.
        public var sequencesPerExample: Int {
            if case .classification(let classes) = self { classes } else { 1 }
        }
    }

    public init() {}

    /// Options that cannot work together, refused before any weight is loaded.
    public func validate() throws {
        // A method fused by nature is told to use adamw; one fused by setting, to turn the setting off.
        let fusedBy = method.definition.fusion == .always ? "" : " with method.fused"
        let unfused = method.definition.fusion == .always ? "adamw" : "method.fused: false"
        if isFused, clipNorm != nil {
            throw TrainingError(
                message:
                    """
                    \(method.rawValue)\(fusedBy) updates each tensor inside backward, so the global gradient norm is \
                    never known: drop gradient clipping (clip: none) or use \(unfused), which keeps a full gradient \
                    (+4 bytes per parameter)
                    """
            )
        }
        if isFused, accumulation > 1 {
            throw TrainingError(
                message:
                    """
                    \(method.rawValue)\(fusedBy) updates each tensor as soon as its gradient is known, so gradients of \
                    several micro-batches never meet: set accumulation to 1, or use \(unfused) (full gradient, +4 \
                    bytes per parameter) to accumulate
                    """
            )
        }
        do { try method.definition.validate(self) } catch let e as MethodError { throw method.definition.error(e) }
        if case .classification = objective {
            guard method.isZerothOrder else {
                throw TrainingError(
                    message:
                        """
                        train.loss: classification is differentiated by forward passes only; use method mezo or dizo, \
                        or train.loss: lm (the gold label word's loss) with \(method.rawValue)
                        """
                )
            }
            guard !packing else {
                throw TrainingError(
                    message:
                        "train.loss: classification scores each candidate as its own sequence; set data.packing: false")
            }
        }
        if schedule.total <= 0 || batchSize <= 0 || maxLength <= 0 || accumulation <= 0 {
            throw TrainingError(message: "steps, batch size and sequence length must be positive")
        }
    }
}
