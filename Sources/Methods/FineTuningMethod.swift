import Llama
import TensorCore

/// What one step of a method did.
public struct MethodStep: Sendable {
    /// Loss over the step's batches (before the update).
    public var loss: LossResult
    /// Global gradient norm before clipping, when the method forms the full gradient.
    public var gradientNorm: Double?
    /// The step was not applied (non-finite loss or gradient).
    public var skipped: Bool
    /// Method-specific numbers for the training log (e.g. GaLore's mean rank).
    public var details: [String: Double]

    public init(loss: LossResult, gradientNorm: Double? = nil, skipped: Bool = false, details: [String: Double] = [:]) {
        self.loss = loss
        self.gradientNorm = gradientNorm
        self.skipped = skipped
        self.details = details
    }
}

/// What the methods layer refuses: settings that cannot work (found before any step), or a run that must stop
/// (non-finite losses or gradients, a host worker that stopped answering).
public struct MethodError: Error, CustomStringConvertible {
    /// The setting at fault, as the method's own settings name it (e.g. `minRank`); nil when the error is not one
    /// setting's. The configuration layer names it as its users write it.
    public let setting: String?
    public let message: String
    public init(setting: String? = nil, message: String) { (self.setting, self.message) = (setting, message) }
    public var description: String { setting.map { "\($0) \(message)" } ?? message }
}

/// The data of one step as a method sees it.
public struct StepInputs {
    /// The step's micro-batches (gradient methods backpropagate through them).
    public var batches: [TokenBatch]
    /// The step's objective at the current weights, forward only (what zeroth-order methods difference).
    public var objective: () throws -> LossResult
    /// The objective on the i-th batch of a second, independent data stream (DiZO's projection search).
    public var auxiliaryObjective: (Int) throws -> LossResult
    /// The i-th batch of that stream (LSP-Offload's held-out gradients for fitting its projectors); nil when none.
    public var auxiliaryBatch: ((Int) throws -> TokenBatch)?

    public init(
        batches: [TokenBatch], objective: @escaping () throws -> LossResult,
        auxiliaryObjective: @escaping (Int) throws -> LossResult, auxiliaryBatch: ((Int) throws -> TokenBatch)? = nil
    ) {
        self.batches = batches
        self.objective = objective
        self.auxiliaryObjective = auxiliaryObjective
        self.auxiliaryBatch = auxiliaryBatch
    }
}

/// One way of changing a model's weights; every method sits behind it. The trainer hands a method the
/// micro-batches of a step and the step's learning rate; the method runs the passes it needs (backward
/// into a full gradient, fused updates inside backward, forward passes only) and updates the weights.
public protocol FineTuningMethod: AnyObject {
    /// One step on `inputs`; `step` counts from 1. `nonFinite` decides whether a step with a non-finite
    /// loss or gradient is skipped or the run stops.
    func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep
    /// The tensors to checkpoint, by name.
    var state: [StateTensor] { get }
    /// Sizes state whose size varies for a checkpoint's tensors (name → element count), before they are read.
    func prepareRestore(counts: [String: Int]) throws
}

extension FineTuningMethod {
    public func prepareRestore(counts: [String: Int]) throws {}
}

/// Backpropagation into a full gradient slab: micro-batch gradients are averaged, optionally clipped to a
/// global norm, checked for non-finite values, then the optimizer updates every tensor.
public final class AccumulatedGradientMethod: FineTuningMethod {
    public let optimizer: any Optimizer
    public let gradients: GradientSlab
    public let clipNorm: Double?
    public let checkpointing: Bool

    public init(optimizer: any Optimizer, clipNorm: Double?, checkpointing: Bool, ledger: MemoryLedger) {
        self.optimizer = optimizer
        self.clipNorm = clipNorm
        self.checkpointing = checkpointing
        gradients = GradientSlab(layout: optimizer.layout, ledger: ledger)
    }

    public var state: [StateTensor] { optimizer.state }
    public func prepareRestore(counts: [String: Int]) throws { try optimizer.prepareRestore(counts: counts) }

    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        let batches = inputs.batches
        gradients.zero()
        var loss = LossResult(sum: 0, count: 0)
        for b in batches {  // each backward adds its mean-loss gradient; the step uses their average
            let r = try model.lossAndGradients(b, into: gradients, checkpointing: checkpointing)
            loss.sum += r.sum
            loss.count += r.count
        }
        if batches.count > 1 {
            Vector.scale(gradients.slab.pointer, count: gradients.slab.count, by: 1 / Float(batches.count))
        }
        for (id, info) in optimizer.layout.parameters.enumerated() where optimizer.groups.isFrozen(info.role) {
            gradients.view(id).initialize(repeating: 0)  // frozen: out of the norm and the step
        }
        let norm = clipNorm.map { GradientClipping.clip(gradients, maxNorm: $0) } ?? GradientClipping.norm(gradients)
        guard try nonFinite.admit(loss: loss.mean, gradientNorm: norm, step: step) else {
            return MethodStep(loss: loss, gradientNorm: norm, skipped: true)
        }
        optimizer.step(model.store, gradients: gradients, learningRate: learningRate, step: step)
        return MethodStep(loss: loss, gradientNorm: norm, details: optimizer.diagnostics)
    }
}

/// Updates inside backward: each tensor is updated as soon as its gradient is final and the gradient is
/// dropped, so no full-model gradient exists. One batch per step; no global clipping (the norm is
/// known only after every tensor has moved).
public final class FusedGradientMethod: FineTuningMethod {
    public let optimizer: any Optimizer
    public let checkpointing: Bool
    private let sink: FusedUpdateSink

    public init(optimizer: any Optimizer, store: any ParameterStore, checkpointing: Bool, ledger: MemoryLedger) {
        self.optimizer = optimizer
        self.checkpointing = checkpointing
        sink = FusedUpdateSink(optimizer: optimizer, store: store, ledger: ledger)
    }

    public var state: [StateTensor] { optimizer.state }
    public func prepareRestore(counts: [String: Int]) throws { try optimizer.prepareRestore(counts: counts) }

    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        let batches = inputs.batches
        precondition(batches.count == 1, "fused updates take one batch per step")
        sink.learningRate = learningRate
        sink.step = step
        let loss = try model.lossAndGradients(batches[0], into: sink, checkpointing: checkpointing)
        guard loss.mean.isFinite else {  // the weights changed inside backward: nothing to skip
            throw MethodError(
                message:
                    """
                    step \(step): non-finite loss \(loss.mean) with fused updates, which change the weights inside \
                    backward and cannot skip a step. Lower the learning rate or use adamw (full gradient, skips such \
                    steps).
                    """
            )
        }
        return MethodStep(loss: loss, details: optimizer.diagnostics)
    }
}
