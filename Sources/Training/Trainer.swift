import Datasets
import Llama
import Methods
import TensorCore

/// What a training run does.
public struct TrainingOptions: Sendable, Codable, Equatable {
    public enum Method: String, Sendable, Codable, CaseIterable { case adamw, adamwFused = "adamw-fused", lion, sgd }

    public var method: Method = .adamw
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

    public init() {}

    /// Options that cannot work together, refused before any weight is loaded.
    public func validate() throws {
        if method == .adamwFused, clipNorm != nil {
            throw TrainingError(message: "adamw-fused updates each tensor inside backward, so the global gradient norm is never known: drop gradient clipping (clip: none) or use adamw, which keeps a full gradient (+4 bytes per parameter)")
        }
        if method == .adamwFused, accumulation > 1 {
            throw TrainingError(message: "adamw-fused updates each tensor as soon as its gradient is known, so gradients of several micro-batches never meet: set accumulation to 1, or use adamw (full gradient, +4 bytes per parameter) to accumulate")
        }
        if schedule.total <= 0 || batchSize <= 0 || maxLength <= 0 || accumulation <= 0 {
            throw TrainingError(message: "steps, batch size and sequence length must be positive")
        }
    }
}

public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// What one step did.
public struct StepReport: Sendable {
    public let step: Int
    public let loss: Double
    public let learningRate: Double
    public let gradientNorm: Double?
    public let tokens: Int
    /// Positions per sequence of the step's (last micro-)batch.
    public let length: Int
    public let seconds: Double
    public let skipped: Bool
}

/// Runs optimizer steps over tokenized examples: seeded shuffling per epoch, the LR schedule, clipping,
/// the non-finite guard, and either a full gradient slab or fused updates inside backward.
public final class Trainer {
    public let model: LlamaModel
    public let options: TrainingOptions
    let examples: [TokenizedExample]
    /// The method that changes the weights.
    public let method: any FineTuningMethod
    var guardian = NonFiniteGuard()
    public private(set) var step = 0

    public init(model: LlamaModel, examples: [TokenizedExample], options: TrainingOptions) throws {
        try options.validate()
        self.model = model
        self.examples = examples
        self.options = options
        method = Self.method(options, model: model)
        let sequences = sequences(ofEpoch: 0).count
        guard sequences >= options.batchSize * options.accumulation else {
            throw TrainingError(message: "the dataset makes \(sequences) sequences (\(examples.count) examples\(options.packing ? ", packed" : "")), fewer than one step of \(options.accumulation) × \(options.batchSize)")
        }
    }

    /// The method that `options` name, with its state allocated for `model`.
    public static func method(_ options: TrainingOptions, model: LlamaModel) -> any FineTuningMethod {
        let optimizer = optimizer(options.method, layout: model.layout, groups: options.groups, ledger: model.ledger)
        return switch options.method {
        case .adamwFused: FusedGradientMethod(optimizer: optimizer, store: model.store, checkpointing: options.checkpointing, ledger: model.ledger)
        case .adamw, .lion, .sgd: AccumulatedGradientMethod(optimizer: optimizer, clipNorm: options.clipNorm, checkpointing: options.checkpointing, ledger: model.ledger)
        }
    }

    /// The optimizer of `method` with its state slabs for `layout`.
    public static func optimizer(_ method: TrainingOptions.Method, layout: ParameterLayout,
                                 groups: ParameterGroups = ParameterGroups(weightDecay: 0), ledger: MemoryLedger = .shared) -> any Optimizer {
        switch method {
        case .adamw, .adamwFused: AdamW(layout: layout, groups: groups, ledger: ledger)
        case .lion: Lion(layout: layout, groups: groups, ledger: ledger)
        case .sgd: SGD(layout: layout, momentum: 0.9, groups: groups, ledger: ledger)
        }
    }

    func restore(step: Int, nonFiniteSkipped: Int) {
        self.step = step
        guardian = NonFiniteGuard(limit: guardian.limit, skipped: nonFiniteSkipped)
    }

    /// Batches per epoch of the epochs seen so far, and the sequences of the last one asked for.
    private var batchesPerEpoch: [Int] = []
    private var cachedEpoch: (epoch: Int, sequences: [[Int]])?

    /// Epoch `epoch`'s sequences as example indices: a per-epoch seeded shuffle, one example per
    /// sequence or, when packing, consecutive examples of the shuffle packed together.
    func sequences(ofEpoch epoch: Int) -> [[Int]] {
        if let cachedEpoch, cachedEpoch.epoch == epoch { return cachedEpoch.sequences }
        let order = Batcher.shuffled(examples.count, seed: options.seed, epoch: epoch)
        let sequences = options.packing
            ? Batcher.packRows(order.map { examples[$0].ids.count }, maxLength: options.maxLength).map { Array(order[$0]) }
            : order.map { [$0] }
        cachedEpoch = (epoch, sequences)
        return sequences
    }

    /// Micro-batch `index` (0-based over the run): consecutive slices of its epoch's sequences.
    func batch(at index: Int) throws -> TokenBatch {
        var epoch = 0, position = index
        while true {
            if epoch == batchesPerEpoch.count { batchesPerEpoch.append(sequences(ofEpoch: epoch).count / options.batchSize) }
            if position < batchesPerEpoch[epoch] { break }
            position -= batchesPerEpoch[epoch]
            epoch += 1
        }
        let picked = sequences(ofEpoch: epoch)[position * options.batchSize..<(position + 1) * options.batchSize]
        return try Batcher.batch(packed: picked.map { $0.map { examples[$0] } }, maxLength: options.maxLength)
    }

    /// Mean next-token loss over `examples` (forward only, in batches of the training batch size).
    public func evaluate(_ examples: [TokenizedExample]) throws -> LossResult {
        var total = LossResult(sum: 0, count: 0)
        var start = 0
        while start < examples.count {
            let chunk = Array(examples[start..<min(examples.count, start + options.batchSize)])
            let r = try model.loss(try Batcher.batch(chunk, maxLength: options.maxLength))
            total.sum += r.sum
            total.count += r.count
            start += chunk.count
        }
        return total
    }

    /// One optimizer step.
    public func runStep() throws -> StepReport {
        let start = monotonicNanoseconds()
        let lr = options.schedule.rate(at: step)
        step += 1
        let batches = try (0..<options.accumulation).map { try batch(at: (step - 1) * options.accumulation + $0) }
        let r = try method.step(model, batches: batches, learningRate: Float(lr), step: step, nonFinite: &guardian)
        return StepReport(step: step, loss: r.loss.mean, learningRate: lr, gradientNorm: r.gradientNorm, tokens: r.loss.count,
                          length: batches.last!.length, seconds: Double(monotonicNanoseconds() - start) * 1e-9, skipped: r.skipped)
    }
}
