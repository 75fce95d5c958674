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
        abstract: "Fine-tune every weight of a model on a JSONL file and write the result as a Hugging Face directory.")

    @OptionGroup var source: ModelOptions
    @Option(help: "JSONL data: text, prompt/completion, messages or instruction/input/output records.")
    var data: String
    @Option(help: "Where metrics.jsonl and the fine-tuned model (model/) go; must be empty or new.")
    var output: String
    @Option(help: "adamw, adamw-fused (no full gradient; needs --clip 0), lion or sgd.")
    var method: TrainingOptions.Method = .adamw
    @Option(help: "Peak learning rate.")
    var lr: Double = 1e-4
    @Option(help: "Optimizer steps.")
    var steps = 100
    @Option(help: "Warmup steps.")
    var warmup = 0
    @Option(help: "Schedule after warmup: constant, linear, cosine.")
    var schedule: LRSchedule.Shape = .cosine
    @Option(help: "Sequences per step.")
    var batch = 4
    @Option(help: "Tokens per sequence at most.")
    var seq = 256
    @Option(help: "Global gradient-norm clip; 0 turns it off.")
    var clip: Double = 1.0
    @Option(help: "Decoupled weight decay (norms exempt).")
    var weightDecay: Float = 0.0
    @Option(help: "Seed of the data order.")
    var seed: UInt64 = 0
    @Option(help: "Threads for GEMM and kernels.")
    var threads = 2
    @Flag(help: "Activation checkpointing: recompute each layer in backward.")
    var checkpointing = false
    @Option(help: "Save a checkpoint (weights, optimizer state, step) every N steps into OUTPUT/checkpoints; 0 for none.")
    var checkpointEvery = 0
    @Option(help: "Held-out JSONL data to evaluate on (loss and perplexity in the metrics).")
    var evalData: String?
    @Option(help: "Evaluate every N steps (and at the end); 0 for never.")
    var evalEvery = 0
    @Option(help: "Checkpoints to keep (the newest); 0 keeps all.")
    var keepCheckpoints = 3
    @Option(help: "Continue from a checkpoint folder, or 'auto' for the latest in OUTPUT/checkpoints.")
    var resume: String?

    func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.method = method
        o.schedule = LRSchedule(schedule, peak: lr, warmup: warmup, total: steps)
        o.weightDecay = weightDecay
        o.batchSize = batch
        o.maxLength = seq
        o.clipNorm = clip > 0 ? clip : nil
        o.seed = seed
        o.checkpointing = checkpointing
        return o
    }

    func validate() throws {
        do { try options().validate() } catch let e as TrainingError { throw ValidationError(e.message) }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        guard existing.isEmpty || resume != nil else {
            throw ValidationError("\(output) already holds files; choose a new or empty directory, or pass --resume auto to continue its run")
        }
    }

    func run() throws {
        GEMM.setThreads(threads)
        let records = try JSONLReader.read(data)  // data errors before any weight loads
        let evalRecords = try evalData.map { try JSONLReader.read($0) } ?? []
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let loaded = try source.load()
        var encoder = ExampleEncoder(tokenizer: loaded.tokenizer, template: loaded.chatTemplate, templateTokens: loaded.templateTokens)
        encoder.trainOnPrompt = false
        let examples = try records.map { try encoder.encode($0) }
        let evalExamples = try evalRecords.map { try encoder.encode($0) }
        if let warning = encoder.stopTokenWarning(examples) { print("warning: \(warning)") }
        let trainer = try Trainer(model: loaded.model, examples: examples, options: options())
        let checkpoints = output + "/checkpoints"
        if let resume {
            let path = resume == "auto" ? try latestCheckpoint(in: checkpoints) : resume
            try Checkpoint.restore(trainer, from: path)
            print("resumed from \(path) at step \(trainer.step)")
        }
        try Self.keepMetrics(upTo: trainer.step, in: output + "/metrics.jsonl")
        let metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: output + "/metrics.jsonl"))
        try metrics.seekToEnd()
        print("training \(source.model) on \(examples.count) examples from \(data): \(method.rawValue), \(steps) steps of \(batch) × ≤\(seq)")
        for sig in [SIGINT, SIGTERM] { signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) } }
        while trainer.step < steps {
            let r = try trainer.runStep()
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
                try pruneCheckpoints(in: checkpoints)
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

    /// Deletes all but the newest `keepCheckpoints` checkpoints.
    func pruneCheckpoints(in directory: String) throws {
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
