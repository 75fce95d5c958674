/// What a run does between optimizer steps: when it evaluates, samples and checkpoints, and how many
/// checkpoints it keeps. Counts of 0 turn the work off (`keepCheckpoints` 0 keeps all).
public struct LoopSettings: Sendable, Equatable {
    /// Evaluate on the held-out data at step 0, every N steps and at the last step.
    public var evalEvery = 0
    /// Sequences per held-out forward pass.
    public var evalBatch = 16
    /// Greedy samples at step 0, every N steps and at the last step.
    public var sampleEvery = 0
    public var sampleTokens = 48
    /// Prompts to continue; BOS alone when empty.
    public var samplePrompts: [String] = []
    /// Save a checkpoint every N steps and at the last step.
    public var checkpointEvery = 0
    /// Checkpoints to keep, the newest; 0 keeps all.
    public var keepCheckpoints = 0
    /// Threads the memory report plans for.
    public var threads = 2

    public init() {}

    /// The `eval`, `checkpoint` and `train.threads` settings of `s`.
    public init(_ s: RunSettings) {
        (evalEvery, evalBatch, sampleEvery) = (s.eval.every, max(1, s.eval.batch), s.eval.sampleEvery)
        (sampleTokens, samplePrompts) = (max(1, s.eval.sampleTokens), s.eval.samplePrompts)
        (checkpointEvery, keepCheckpoints, threads) = (s.checkpoint.every, s.checkpoint.keep, s.train.threads)
    }
}
