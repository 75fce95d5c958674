import Datasets
import Llama
import Methods
import TensorCore

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
    /// Method-specific numbers (e.g. GaLore's mean rank).
    public let details: [String: Double]
}

/// Runs optimizer steps over tokenized examples: seeded shuffling per epoch, the LR schedule, clipping,
/// the non-finite guard, and either a full gradient slab or fused updates inside backward.
public final class Trainer {
    public let model: LlamaModel
    public let options: TrainingOptions
    let examples: [TokenizedExample]
    /// Each example's candidates, for the classification objective.
    let candidates: [ClassificationExample]
    /// The method that changes the weights.
    public let method: any FineTuningMethod
    var guardian = NonFiniteGuard()
    public private(set) var step = 0

    /// - Parameter candidates: for `options.objective` classification, each example's candidates (same order).
    public init(
        model: LlamaModel, examples: [TokenizedExample], candidates: [ClassificationExample] = [],
        options: TrainingOptions
    ) throws {
        try options.validate()
        if case .classification(let classes) = options.objective {
            guard candidates.count == examples.count, candidates.allSatisfy({ $0.candidates.count == classes }) else {
                throw TrainingError(
                    message:
                        """
                        train.loss: classification needs a classification task (data.task: classification) whose every \
                        training record has a label
                        """
                )
            }
        }
        self.model = model
        self.examples = examples
        self.candidates = candidates
        self.options = options
        let sequences = Self.sequences(examples, options, epoch: 0, stream: 0).count
        method = try Self.method(options, model: model, stepsPerEpoch: sequences / options.batchSize)
        guard sequences >= options.batchSize * options.accumulation else {
            throw TrainingError(
                message:
                    """
                    the dataset makes \(sequences) sequences (\(examples.count) \
                    examples\(options.packing ? ", packed" : "")), fewer than one step of \(options.accumulation) × \
                    \(options.batchSize)
                    """
            )
        }
    }

    /// `model` with the weight store and the compute precision the method of `options` works in: the weights
    /// converted tensor by tensor from `model`'s store (INT8 dense-and-sparse for QFT, bf16 for `weights: bf16` or
    /// zeroth-order methods computing in bf16; the source store is released when the caller drops `model`), and
    /// bf16 GEMMs where `options.precision` asks for them and this CPU runs them (`options.precision.kernel.note`
    /// says when bf16 compute falls back to fp32).
    public static func model(_ model: LlamaModel, for options: TrainingOptions) throws -> LlamaModel {
        let kernel = options.precision.kernel.kernel
        let store: any ParameterStore
        switch options.weightFormat {
        case .fp32:
            store =
                model.store is FP32ParameterStore
                ? model.store : FP32ParameterStore(converting: model.store, ledger: model.ledger)
        case .bf16:
            store =
                model.store is BF16ParameterStore
                ? model.store : BF16ParameterStore(converting: model.store, seed: options.seed, ledger: model.ledger)
        case .int8:
            do {
                store = try DenseSparseStore(
                    converting: model.store, settings: options.qft.weights, seed: options.seed, ledger: model.ledger)
            } catch let e as MethodError { throw options.method.definition.error(e) }
        }
        return try LlamaModel(config: model.config, store: store, bf16: kernel, ledger: model.ledger)
    }

    /// The method that `options` name, with its state allocated for `model`; `stepsPerEpoch` sets schedules
    /// counted in epochs (QFT's outlier refresh).
    public static func method(
        _ options: TrainingOptions, model: LlamaModel, stepsPerEpoch: Int = 1
    ) throws -> any FineTuningMethod {
        let definition = options.method.definition
        do { return try definition.make(options, model: model, stepsPerEpoch: stepsPerEpoch) } catch let e
            as MethodError
        { throw definition.error(e) }
    }

    func restore(step: Int, nonFiniteSkipped: Int) {
        self.step = step
        guardian = NonFiniteGuard(limit: guardian.limit, skipped: nonFiniteSkipped)
    }

    /// Per data stream: batches per epoch of the epochs seen so far, and the sequences of the last one asked for.
    private var batchesPerEpoch: [Int: [Int]] = [:]
    private var cachedEpoch: [Int: (epoch: Int, sequences: [[Int]])] = [:]

    /// Epoch `epoch`'s sequences as example indices: a per-epoch seeded shuffle, one example per
    /// sequence or, when packing, consecutive examples of the shuffle packed together. Stream 0 is the
    /// training order; stream 1 an independent one (DiZO's projection batches).
    func sequences(ofEpoch epoch: Int, stream: Int = 0) -> [[Int]] {
        if let cached = cachedEpoch[stream], cached.epoch == epoch { return cached.sequences }
        let sequences = Self.sequences(examples, options, epoch: epoch, stream: stream)
        cachedEpoch[stream] = (epoch, sequences)
        return sequences
    }

    static func sequences(
        _ examples: [TokenizedExample], _ options: TrainingOptions, epoch: Int, stream: Int
    ) -> [[Int]] {
        let order = Batcher.shuffled(examples.count, seed: options.seed, stream: stream, epoch: epoch)
        return options.packing
            ? Batcher.packRows(order.map { examples[$0].ids.count }, maxLength: options.maxLength).map {
                Array(order[$0])
            }
            : order.map { [$0] }
    }

    /// Micro-batch `index` (0-based over the run) of data stream `stream`.
    func batch(at index: Int, stream: Int = 0) throws -> TokenBatch {
        try Batcher.batch(
            packed: sequences(at: index, stream: stream).map { $0.map { examples[$0] } }, maxLength: options.maxLength)
    }

    /// The sequences (example indices) of micro-batch `index` of `stream`: consecutive slices of its epoch's sequences.
    func sequences(at index: Int, stream: Int) -> ArraySlice<[Int]> {
        var epoch = 0, position = index
        while true {
            if epoch == batchesPerEpoch[stream, default: []].count {
                batchesPerEpoch[stream, default: []].append(
                    sequences(ofEpoch: epoch, stream: stream).count / options.batchSize)
            }
            let count = batchesPerEpoch[stream]![epoch]
            if position < count { break }
            position -= count
            epoch += 1
        }
        return sequences(ofEpoch: epoch, stream: stream)[
            position * options.batchSize..<(position + 1) * options.batchSize]
    }

    /// The objective, forward only, summed over micro-batches `indices` of `stream` (their inputs are
    /// built once; the closure may run many times, at different weights).
    func objective(_ indices: [Int], stream: Int) throws -> () throws -> LossResult {
        let model = self.model, maxLength = options.maxLength
        func sum<T>(_ parts: [T], _ loss: @escaping (T) throws -> LossResult) -> () throws -> LossResult {
            {
                try parts.reduce(LossResult(sum: 0, count: 0)) { total, p in
                    let r = try loss(p)
                    return LossResult(sum: total.sum + r.sum, count: total.count + r.count)
                }
            }
        }
        switch options.objective {
        case .languageModel:
            return sum(try indices.map { try batch(at: $0, stream: stream) }) { try model.loss($0) }
        case .classification:
            let sets = indices.map { sequences(at: $0, stream: stream).joined().map { candidates[$0] } }
            return sum(sets) { try Classification.loss(model, $0, maxLength: maxLength) }
        }
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
        let indices = (0..<options.accumulation).map { (step - 1) * options.accumulation + $0 }
        let batches = try indices.map { try batch(at: $0) }
        let inputs = StepInputs(
            batches: batches, objective: try objective(indices, stream: 0),
            auxiliaryObjective: { [unowned self] i in try objective([i], stream: 1)() },
            auxiliaryBatch: { [unowned self] i in try batch(at: i, stream: 1) })
        let r = try method.step(model, inputs: inputs, learningRate: Float(lr), step: step, nonFinite: &guardian)
        return StepReport(
            step: step, loss: r.loss.mean, learningRate: lr, gradientNorm: r.gradientNorm, tokens: r.loss.count,
            length: batches.last!.length, seconds: Double(monotonicNanoseconds() - start) * 1e-9, skipped: r.skipped,
            details: r.details)
    }
}
