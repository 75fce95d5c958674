import Datasets
import Foundation
import Formats
import Llama
import TensorCore

/// The data a run scores itself on between steps.
public struct HeldOut: Sendable {
    /// Text examples, scored by next-token loss.
    public var examples: [TokenizedExample]
    /// Classification examples, scored by accuracy and label-word loss.
    public var classification: [ClassificationExample]
    /// The tokenizer of the sample prompts; no samples without one.
    public var tokenizer: (any Tokenizer)?

    public init(
        examples: [TokenizedExample] = [], classification: [ClassificationExample] = [],
        tokenizer: (any Tokenizer)? = nil
    ) {
        self.examples = examples
        self.classification = classification
        self.tokenizer = tokenizer
    }

    var isEmpty: Bool { examples.isEmpty && classification.isEmpty }
}

extension Trainer {
    /// Runs the schedule from the current step to its end: each step, then the evaluation, samples and checkpoint
    /// `loop` asks for at that step (the evaluation and samples also at step 0 of a fresh run), with old checkpoints
    /// pruned. Every event goes to `events`; an answer `.stop` saves a checkpoint of the current step (unless one was
    /// just saved) and returns once that step's work is done.
    /// - Parameters:
    ///   - checkpoints: the folder of the `step-NNNNNN` checkpoints.
    ///   - resolvedConfig: saved with each checkpoint as config.yaml.
    public func run(
        _ loop: LoopSettings, heldOut: HeldOut = HeldOut(), checkpoints: String, resolvedConfig: String? = nil,
        events: (TrainingEvent) throws -> TrainingAnswer
    ) throws -> TrainingOutcome {
        let total = options.schedule.total
        var stopping = false
        func emit(_ event: TrainingEvent) throws { stopping = try events(event) == .stop || stopping }
        func due(_ step: Int, every n: Int) -> Bool { n > 0 && (step % n == 0 || step == total) }
        func evaluateAndSample(at step: Int) throws {
            let evaluating = due(step, every: loop.evalEvery) && !heldOut.isEmpty
            let sampling = due(step, every: loop.sampleEvery) && heldOut.tokenizer != nil
            guard evaluating || sampling else { return }
            defer { model.releaseForwardBuffers() }  // evaluation's buffers are not kept through training
            if evaluating { try emit(.evaluation(evaluate(heldOut, at: step, batch: loop.evalBatch))) }
            if sampling, let tokenizer = heldOut.tokenizer {
                for prompt in loop.samplePrompts.isEmpty ? [""] : loop.samplePrompts {
                    guard let completion = try sample(prompt, tokens: loop.sampleTokens, tokenizer: tokenizer) else {
                        continue
                    }
                    try emit(.sample(step: step, prompt: prompt, completion: completion))
                }
            }
        }

        if step == 0 { try evaluateAndSample(at: 0) }
        model.ledger.resetPeak()  // the memory report is about training
        var reportedMemory = false
        while step < total, !stopping {
            let r = try runStep()
            try emit(.step(r))
            if !reportedMemory {  // after the first step of this process, when every buffer exists
                reportedMemory = true
                try emit(.memory(memoryReport(length: r.length, threads: loop.threads)))
            }
            try evaluateAndSample(at: r.step)
            if due(r.step, every: loop.checkpointEvery) {
                let path = try Checkpoint.save(self, in: checkpoints, resolvedConfig: resolvedConfig)
                try Checkpoint.prune(in: checkpoints, keep: loop.keepCheckpoints)
                try emit(.checkpoint(step: r.step, path: path))
                if stopping { return .stopped(step: step, checkpoint: path) }
            }
        }
        guard stopping else { return .finished }
        let path = try Checkpoint.save(self, in: checkpoints, resolvedConfig: resolvedConfig)
        try emit(.checkpoint(step: step, path: path))
        return .stopped(step: step, checkpoint: path)
    }

    /// Held-out loss (text) and accuracy (classification) at `step`.
    func evaluate(_ heldOut: HeldOut, at step: Int, batch: Int) throws -> EvaluationReport {
        EvaluationReport(
            step: step, loss: heldOut.examples.isEmpty ? nil : try evaluate(heldOut.examples).mean,
            classification: heldOut.classification.isEmpty
                ? nil
                : try Classification.evaluate(
                    model, heldOut.classification, batchSize: batch, maxLength: options.maxLength))
    }

    /// The greedy continuation of `prompt` after BOS, or nil when there is nothing to continue.
    func sample(_ prompt: String, tokens: Int, tokenizer: any Tokenizer) throws -> String? {
        let ids = (tokenizer.bos.map { [$0] } ?? []) + tokenizer.encode(prompt)
        guard !ids.isEmpty else { return nil }
        var sampler = Sampler(temperature: 0, seed: 0)
        let new = try model.generate(
            prompt: ids, maxNewTokens: tokens, sampler: &sampler, stop: tokenizer.stopTokens)
        return tokenizer.decode(new, after: ids.last)
    }

    /// The plan at `length` positions against the ledger's and the process's peaks.
    func memoryReport(length: Int, threads: Int) -> MemoryReport {
        var shaped = options
        shaped.maxLength = length
        return MemoryReport(
            length: length,
            plannedBytes: MemoryPlan.estimate(model.config, options: shaped, threads: threads).values.reduce(0, +),
            ledgerPeakBytes: model.ledger.snapshot().peakTotal, residentPeakBytes: ProcessMemory.peakResidentBytes)
    }
}
