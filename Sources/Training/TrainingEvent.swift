import TensorCore

/// What ``Trainer/run(_:heldOut:checkpoints:resolvedConfig:events:)`` reports as it goes, in order: a
/// step, then (after the first step of the process) the memory report, then the evaluation, samples and
/// checkpoint due at that step.
public enum TrainingEvent: Sendable {
    case step(StepReport)
    case memory(MemoryReport)
    case evaluation(EvaluationReport)
    case sample(step: Int, prompt: String, completion: String)
    case checkpoint(step: Int, path: String)
}

/// The caller's answer to an event: go on, or save a checkpoint and stop once the current step's work is done.
public enum TrainingAnswer: Sendable {
    case `continue`, stop
}

/// How a run ended.
public enum TrainingOutcome: Sendable, Equatable {
    /// Every step of the schedule ran.
    case finished
    /// Stopped by an answer; `checkpoint` continues the run.
    case stopped(step: Int, checkpoint: String)
}

/// Held-out scores at one step.
public struct EvaluationReport: Sendable {
    public let step: Int
    /// Mean next-token loss of the held-out text examples.
    public let loss: Double?
    /// Accuracy and label-word loss of the held-out classification examples.
    public let classification: ClassificationResult?
}

/// The memory plan at the batch's real length (batches are padded to their longest example) against what was
/// measured after the first step of the process, when every buffer exists.
public struct MemoryReport: Sendable {
    /// Positions per sequence of the step measured.
    public let length: Int
    public let plannedBytes: Int
    public let ledgerPeakBytes: Int
    public let residentPeakBytes: Int

    /// (plan − ledger peak) / ledger peak.
    public var gap: Double { Double(plannedBytes - ledgerPeakBytes) / Double(max(1, ledgerPeakBytes)) }
    /// The plan and the ledger differ by more than 15%.
    public var planIsOff: Bool { abs(gap) > 0.15 }
}
