import ArgumentParser
import Datasets
import Foundation
import Formats
import Methods
import TensorCore
import Training
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; the training loop saves a checkpoint and stops after the current step.
private let stopRequested = Atomic<Bool>(false)

extension TrainingOptions.Method: ExpressibleByArgument {}
extension LRSchedule.Shape: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune every weight of a model on a JSONL file and write the result as a Hugging Face directory.",
        discussion: """
            Settings come from defaults, then --config FILE (YAML sections: model, data, method, optimizer, schedule, train, \
            eval, checkpoint, logging), then --set section.key=value, then the flags below. `leantune validate FILE` and \
            --dry-run print the resolved configuration; it is saved with the run as OUTPUT/config.yaml.
            """)

    @Option(help: "YAML configuration file.")
    var config: String?
    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var sets: [String] = []
    @Flag(help: "Print the resolved configuration and stop.")
    var dryRun = false
    @Option(help: "Model: a Hugging Face directory, a GGUF file or a llama2.c .bin (model.path).")
    var model: String?
    @Option(help: "Tokenizer file, llama2.c only (model.tokenizer).")
    var tokenizer: String?
    @Option(help: "JSONL data: text, prompt/completion, messages or instruction/input/output records (data.train).")
    var data: String?
    @Option(help: "Held-out JSONL data to evaluate on (data.eval).")
    var evalData: String?
    @Option(help: "Where config.yaml, metrics and the fine-tuned model (model/) go; must be new (logging.output).")
    var output: String?
    @Option(help: "adamw, adamw-fused (no full gradient; needs clip 0), lion or sgd (method.name).")
    var method: TrainingOptions.Method?
    @Option(help: "Peak learning rate (optimizer.lr).")
    var lr: Double?
    @Option(help: "Optimizer steps (schedule.steps).")
    var steps: Int?
    @Option(help: "Warmup steps (schedule.warmup).")
    var warmup: Int?
    @Option(help: "constant, linear or cosine after warmup (schedule.shape).")
    var schedule: LRSchedule.Shape?
    @Option(help: "Sequences per step (train.batch).")
    var batch: Int?
    @Option(help: "Micro-batches averaged into each step (train.accumulate).")
    var accumulate: Int?
    @Option(help: "Tokens per sequence at most (train.seq).")
    var seq: Int?
    @Option(help: "Global gradient-norm clip, 0 for none (optimizer.clip).")
    var clip: Double?
    @Option(help: "Decoupled weight decay, norms exempt (optimizer.weight_decay).")
    var weightDecay: Double?
    @Option(help: "Seed of the data order (train.seed).")
    var seed: Int?
    @Option(help: "Threads for GEMM and kernels (train.threads).")
    var threads: Int?
    @Flag(help: "Activation checkpointing (method.checkpointing).")
    var checkpointing = false
    @Flag(help: "Pack several examples into each sequence; they do not attend to each other (data.packing).")
    var packing = false
    @Option(help: "Evaluate every N steps and at the end (eval.every).")
    var evalEvery: Int?
    @Option(help: "Save a checkpoint every N steps into OUTPUT/checkpoints (checkpoint.every).")
    var checkpointEvery: Int?
    @Option(help: "Checkpoints to keep, the newest; 0 keeps all (checkpoint.keep).")
    var keepCheckpoints: Int?
    @Option(help: "Continue from a checkpoint folder, or 'auto' for the latest in OUTPUT/checkpoints.")
    var resume: String?

    /// The flags given on the command line, as settings.
    var explicit: [(path: String, value: Any)] {
        let all: [(String, Any?)] = [
            ("model.path", model), ("model.tokenizer", tokenizer), ("data.train", data), ("data.eval", evalData),
            ("logging.output", output), ("method.name", method?.rawValue), ("optimizer.lr", lr), ("schedule.steps", steps),
            ("schedule.warmup", warmup), ("schedule.shape", schedule?.rawValue), ("train.batch", batch), ("train.accumulate", accumulate), ("train.seq", seq),
            ("optimizer.clip", clip), ("optimizer.weight_decay", weightDecay), ("train.seed", seed), ("train.threads", threads),
            ("method.checkpointing", checkpointing ? true : nil), ("data.packing", packing ? true : nil), ("eval.every", evalEvery), ("checkpoint.every", checkpointEvery),
            ("checkpoint.keep", keepCheckpoints),
        ]
        return all.compactMap { path, value in value.map { (path, $0) } }
    }

    func resolved() throws -> RunConfig {
        do { return try RunConfig.load(config, overrides: sets, explicit: explicit) } catch let e as TrainingError { throw ValidationError(e.message) }
    }

    func run() throws {
        let settings = try resolved()
        if dryRun {
            print(settings.yaml, terminator: "")
            return
        }
        let options: TrainingOptions
        do { options = try settings.trainingOptions() } catch let e as TrainingError { throw ValidationError(e.message) }
        let output: String, data: String, modelPath: String
        do {
            (output, data, modelPath) = (try settings.required("logging.output"), try settings.required("data.train"), try settings.required("model.path"))
        } catch let e as TrainingError { throw ValidationError(e.message) }
        let steps = options.schedule.total, resume = self.resume
        let evalData = settings.string("data.eval"), evalEvery = settings.int("eval.every")
        let checkpointEvery = settings.int("checkpoint.every"), keepCheckpoints = settings.int("checkpoint.keep")
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        guard existing.isEmpty || resume != nil else {
            throw ValidationError("\(output) already holds files; choose a new or empty directory, or pass --resume auto to continue its run")
        }
        GEMM.setThreads(settings.int("train.threads"))
        let records = try JSONLReader.read(data)  // data errors before any weight loads
        let evalRecords = try evalData.map { try JSONLReader.read($0) } ?? []
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try Data(settings.yaml.utf8).write(to: URL(fileURLWithPath: output + "/config.yaml"), options: .atomic)
        let loaded = try ModelFile.load(modelPath, tokenizer: settings.string("model.tokenizer"))
        var encoder = ExampleEncoder(tokenizer: loaded.tokenizer, template: loaded.chatTemplate, templateTokens: loaded.templateTokens)
        encoder.trainOnPrompt = false
        let examples = try records.map { try encoder.encode($0) }
        let evalExamples = try evalRecords.map { try encoder.encode($0) }
        if let warning = encoder.stopTokenWarning(examples) { print("warning: \(warning)") }
        let trainer = try Trainer(model: loaded.model, examples: examples, options: options)
        let checkpoints = output + "/checkpoints"
        if let resume {
            let path = resume == "auto" ? try latestCheckpoint(in: checkpoints) : resume
            try Checkpoint.restore(trainer, from: path)
            print("resumed from \(path) at step \(trainer.step)")
        }
        try Self.keepMetrics(upTo: trainer.step, in: output + "/metrics.jsonl")
        let metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: output + "/metrics.jsonl"))
        try metrics.seekToEnd()
        print("training \(modelPath) on \(examples.count) examples from \(data): \(options.method.rawValue), \(steps) steps of \(options.batchSize) × ≤\(options.maxLength)")
        var reportedMemory = false
        for sig in [SIGINT, SIGTERM] { signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) } }
        let plan = MemoryPlan.estimate(loaded.model.config, options: options, threads: settings.int("train.threads"))
        print("memory plan at \(options.batchSize) × \(options.maxLength): " + MemoryCategory.allCases.compactMap { c in plan[c].flatMap { $0 > 0 ? "\(c.rawValue) \(PassBenchmark.format(bytes: $0))" : nil } }.joined(separator: ", "))
        while trainer.step < steps {
            let r = try trainer.runStep()
            if !reportedMemory {  // after the first step of this process, when every buffer exists
                reportedMemory = true
                var shaped = options
                shaped.maxLength = r.length  // batches are padded to their longest example, not to the maximum
                let planned = MemoryPlan.estimate(loaded.model.config, options: shaped, threads: settings.int("train.threads")).values.reduce(0, +)
                let peak = MemoryLedger.shared.snapshot().peakTotal
                let gap = Double(planned - peak) / Double(max(1, peak))
                print(String(format: "after the first step (\(r.length) positions): plan %@, ledger peak %@ (%+.1f%%), process peak RSS %@", PassBenchmark.format(bytes: planned),
                             PassBenchmark.format(bytes: peak), 100 * gap, PassBenchmark.format(bytes: ProcessMemory.peakResidentBytes)))
                if abs(gap) > 0.15 { print("warning: the memory plan and the measurement differ by more than 15%") }
            }
            var evalLoss: Double?
            if !evalExamples.isEmpty, evalEvery > 0, r.step % evalEvery == 0 || r.step == steps {
                evalLoss = try trainer.evaluate(evalExamples).mean
                print(String(format: "step %4d  eval loss %.4f  perplexity %.3f", r.step, evalLoss!, Foundation.exp(evalLoss!)))
            }
            let line = String(format: #"{"step":%d,"loss":%.6f,"lr":%.6g,"grad_norm":%@,"tokens":%d,"seconds":%.3f,"skipped":%@,"eval_loss":%@}"#,
                              r.step, r.loss, r.learningRate, r.gradientNorm.map { String(format: "%.6g", $0) } ?? "null",
                              r.tokens, r.seconds, r.skipped ? "true" : "false", evalLoss.map { String(format: "%.6f", $0) } ?? "null")
            metrics.write(Data((line + "\n").utf8))
            if r.step == 1 || r.step % max(1, steps / 10) == 0 || r.step == steps {
                print(String(format: "step %4d/%d  loss %.4f  lr %.2e  %.0f tokens/s  peak RSS %@", r.step, steps, r.loss, r.learningRate,
                             Double(r.tokens) / r.seconds, PassBenchmark.format(bytes: ProcessMemory.peakResidentBytes)))
            }
            if checkpointEvery > 0, r.step % checkpointEvery == 0 || r.step == steps {
                try Checkpoint.save(trainer, in: checkpoints)
                try Self.pruneCheckpoints(in: checkpoints, keep: keepCheckpoints)
            }
            if stopRequested.load(ordering: .relaxed) {
                let path = try Checkpoint.save(trainer, in: checkpoints)
                try metrics.close()
                print("interrupted at step \(trainer.step): saved \(path); continue with --resume auto")
                throw ExitCode(130)
            }
        }
        try metrics.close()
        try Self.writeCSV(from: output + "/metrics.jsonl", to: output + "/metrics.csv")
        try HFDirectory.export(loaded, to: output + "/model")
        print("wrote \(output)/model, \(output)/metrics.jsonl and metrics.csv")
    }

    /// The checkpoint with the highest step in `directory`.
    func latestCheckpoint(in directory: String) throws -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("step-") && !$0.hasSuffix(".partial") }.sorted()
        guard let last = names.last else { throw ValidationError("--resume auto: no checkpoint in \(directory)") }
        return directory + "/" + last
    }

    /// Deletes all but the newest `keep` checkpoints (0 keeps all).
    static func pruneCheckpoints(in directory: String, keep keepCheckpoints: Int) throws {
        guard keepCheckpoints > 0 else { return }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("step-") && !$0.hasSuffix(".partial") }.sorted()
        for name in names.dropLast(keepCheckpoints) { try FileManager.default.removeItem(atPath: directory + "/" + name) }
    }

    /// Keeps the metrics lines of steps ≤ `step` (those after the checkpoint a run resumes from are redone),
    /// creating the file if needed; written atomically.
    static func keepMetrics(upTo step: Int, in path: String) throws {
        let lines = (FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").filter { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let s = object["step"] as? Int else { return false }
                return s <= step
            }
        let text = lines.map { $0 + "\n" }.joined()
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// metrics.csv with the same rows as metrics.jsonl (empty cells for nulls).
    static func writeCSV(from jsonl: String, to csv: String) throws {
        let columns = ["step", "loss", "lr", "grad_norm", "tokens", "seconds", "skipped", "eval_loss"]
        var text = columns.joined(separator: ",") + "\n"
        for line in String(decoding: FileManager.default.contents(atPath: jsonl) ?? Data(), as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            text += columns.map { key in object[key].map { $0 is NSNull ? "" : "\($0)" } ?? "" }.joined(separator: ",") + "\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: csv), options: .atomic)
    }
}
