import Datasets
import Foundation
import Llama
import Training

/// Held-out evaluation and sample generations of a training run, at step 0 and every N steps (and at
/// the last step): loss and perplexity, accuracy for a classification task, greedy samples.
struct Evaluation {
    let encoded: RunData.Encoded
    let encoder: ExampleEncoder
    let trainer: Trainer
    let log: TrainingLog
    let every: Int, batch: Int
    let sampleEvery: Int, sampleTokens: Int
    let samplePrompts: [String]

    init(settings: RunConfig, encoded: RunData.Encoded, encoder: ExampleEncoder, trainer: Trainer, log: TrainingLog) {
        self.encoded = encoded
        self.encoder = encoder
        self.trainer = trainer
        self.log = log
        every = settings.int("eval.every")
        batch = max(1, settings.int("eval.batch"))
        sampleEvery = settings.int("eval.sample_every")
        sampleTokens = max(1, settings.int("eval.sample_tokens"))
        samplePrompts = settings.strings("eval.sample_prompts")
    }

    func due(_ step: Int, every n: Int) -> Bool { n > 0 && (step % n == 0 || step == trainer.options.schedule.total) }

    func run(at step: Int) throws {
        let evaluating = due(step, every: every) && (!encoded.eval.isEmpty || !encoded.evalClassification.isEmpty)
        let sampling = due(step, every: sampleEvery)
        guard evaluating || sampling else { return }
        defer { trainer.model.releaseForwardBuffers() }  // evaluation's buffers are not kept through training
        if evaluating {
            var loss: Double?, accuracy: Double?
            var text = String(format: "step %4d  eval", step)
            if !encoded.evalClassification.isEmpty {
                let r = try Classification.evaluate(
                    trainer.model, encoded.evalClassification, batchSize: batch, maxLength: trainer.options.maxLength)
                (loss, accuracy) = (r.loss.mean, r.accuracy)
                text += String(
                    format: "  accuracy %.4f (%d/%d)  label-word loss %.4f", r.accuracy, r.correct, r.count, r.loss.mean
                )
            }
            if !encoded.eval.isEmpty {
                let l = try trainer.evaluate(encoded.eval).mean
                loss = l
                text += String(format: "  loss %.4f  perplexity %.3f", l, Foundation.exp(l))
            }
            try log.record(["step": step, "eval_loss": loss, "eval_accuracy": accuracy])
            log.note(text)
        }
        if sampling { try samples(at: step) }
    }

    /// Greedy continuations of each sample prompt (from BOS alone when none is configured).
    func samples(at step: Int) throws {
        let tok = encoder.tokenizer, model = trainer.model
        for prompt in samplePrompts.isEmpty ? [""] : samplePrompts {
            let ids = (tok.bos.map { [$0] } ?? []) + tok.encode(prompt)
            guard !ids.isEmpty else { continue }
            var sampler = Sampler(temperature: 0, seed: 0)
            let new = try model.generate(
                prompt: ids, maxNewTokens: sampleTokens, sampler: &sampler, stop: tok.stopTokens)
            let completion = tok.decode(new, after: ids.last)
            try log.sample(step: step, prompt: prompt, completion: completion)
            log.note("step \(step) sample: \(prompt)\(completion)")
        }
    }
}
