import Llama
import TensorCore

/// An elementwise optimizer: updates one parameter tensor at a time from its gradient, keeping its
/// state in slabs laid out like the parameters. The same `update` serves both update modes: after a
/// backward into a full ``GradientSlab`` (``step(_:gradients:learningRate:)``), or inside backward as
/// each gradient is finished (``FusedUpdateSink``).
public protocol Optimizer: AnyObject {
    var layout: ParameterLayout { get }
    /// Weight decay, learning-rate scale and freezing by parameter group.
    var groups: ParameterGroups { get }
    /// Updates `weights` of parameter `id` in place from `gradient` (same count); `step` counts from 1.
    func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate: Float, step: Int)
    /// The state to checkpoint, by name.
    var state: [StateTensor] { get }
    /// Numbers worth logging each step (e.g. GaLore's mean rank); empty for most optimizers.
    var diagnostics: [String: Double] { get }
    /// Sizes state whose size varies (AdaRankGrad's ranks) for a checkpoint's tensors, before they are read.
    func prepareRestore(counts: [String: Int]) throws
}

extension Optimizer {
    public var diagnostics: [String: Double] { [:] }
    public func prepareRestore(counts: [String: Int]) throws {}

    /// Decoupled weight decay of parameter `id` (by its group).
    public func weightDecay(_ id: ParameterID) -> Float { groups.weightDecay(for: layout.parameters[id].role) }

    /// Updates parameter `id` of `store` at its group's learning rate, unless its group is frozen.
    public func apply(
        _ id: ParameterID, to store: any ParameterStore, gradient: UnsafePointer<Float>, learningRate: Float, step: Int
    ) {
        let role = layout.parameters[id].role
        guard !groups.isFrozen(role) else { return }
        let lr = groups.learningRate(learningRate, for: role)
        store.update(id) { w in update(id, weights: w, gradient: gradient, learningRate: lr, step: step) }
    }

    /// One step over every parameter of `store` from a full gradient slab.
    public func step(_ store: any ParameterStore, gradients: GradientSlab, learningRate: Float, step: Int) {
        for id in layout.parameters.indices {
            apply(id, to: store, gradient: gradients.view(id).baseAddress!, learningRate: learningRate, step: step)
        }
    }
}

/// A gradient sink that updates each parameter with `optimizer` as soon as its gradient is final and
/// then drops the gradient: only one tensor's gradient exists at a time (the largest, the embedding,
/// when tied). Gradient accumulation and global clipping need the whole gradient and are not possible here.
public final class FusedUpdateSink: GradientSink {
    public let optimizer: any Optimizer
    public let store: any ParameterStore
    public var learningRate: Float = 0
    public var step = 0
    private let accumulators: TensorAccumulators

    public init(optimizer: any Optimizer, store: any ParameterStore, ledger: MemoryLedger = .shared) {
        self.optimizer = optimizer
        self.store = store
        accumulators = TensorAccumulators(layout: optimizer.layout, ledger: ledger)
    }

    /// Frozen tensors get no gradient: backward skips their matrix gradients.
    public func wants(_ id: ParameterID) -> Bool { !optimizer.groups.isFrozen(optimizer.layout.parameters[id].role) }

    public func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> { accumulators.pointer(for: id) }

    public func finish(_ id: ParameterID) {
        guard let g = accumulators.take(id) else { return }
        optimizer.apply(id, to: store, gradient: g.pointer, learningRate: learningRate, step: step)
    }
}
