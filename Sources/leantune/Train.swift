import ArgumentParser
import Datasets
import Foundation
import Formats
import Methods
import TensorCore
import Llama
import Training
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; the training loop saves a checkpoint and stops after the current step.
private let stopRequested = Atomic<Bool>(false)

extension TrainingOptions.Method: ExpressibleByArgument {}
extension LRSchedule.Shape: ExpressibleByArgument {}
extension TrainingOptions.Weights: ExpressibleByArgument {}
extension TrainingOptions.WeightFormat: ExpressibleByArgument {}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune every weight of a model on a JSONL file and write the result as a Hugging Face directory.",
        discussion: """
            Settings come from defaults, then --config FILE (YAML sections: model, data, method, optimizer, schedule, \
            train, eval, checkpoint, logging), then --set section.key=value, then the flags below. `leantune validate \
            FILE` and --dry-run print the resolved configuration; it is saved with the run as OUTPUT/config.yaml.
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
    @Option(
        help: ArgumentHelp(
            "The method (method.name).",
            discussion: MethodRegistry.all.map { "\($0.name): \($0.summary)" }.joined(separator: "\n")))
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
            ("logging.output", output), ("method.name", method?.rawValue), ("optimizer.lr", lr),
            ("schedule.steps", steps),
            ("schedule.warmup", warmup), ("schedule.shape", schedule?.rawValue), ("train.batch", batch),
            ("train.accumulate", accumulate), ("train.seq", seq),
            ("optimizer.clip", clip), ("optimizer.weight_decay", weightDecay), ("train.seed", seed),
            ("train.threads", threads),
            ("method.checkpointing", checkpointing ? true : nil), ("data.packing", packing ? true : nil),
            ("eval.every", evalEvery), ("checkpoint.every", checkpointEvery),
            ("checkpoint.keep", keepCheckpoints),
        ]
        return all.compactMap { path, value in value.map { (path, $0) } }
    }

    func resolved() throws -> RunConfig {
        try RunConfig.load(config, overrides: sets, explicit: explicit)
    }

    func run() throws {
        // a file-size limit makes writes fail with an error, reported, instead of killing the run
        signal(SIGXFSZ, SIG_IGN)
        let settings = try resolved()
        if dryRun {
            _ = try settings.trainingOptions()
            print(settings.yaml, terminator: "")
            return
        }
        let options: TrainingOptions, output: String, modelPath: String, data: RunData, s: RunSettings
        s = try settings.sections()
        options = try settings.trainingOptions()
        output = try RunSettings.required(s.logging.output, "logging.output")
        modelPath = try s.model.shape.map { "random \($0)" } ?? RunSettings.required(s.model.path, "model.path")
        data = try RunData(s.data)  // data errors before any weight loads
        for line in data.skipReport { print(line) }
        // From shapes alone, before anything is allocated: a run that cannot fit in this machine is refused, not
        // crashed.
        let shape: LlamaConfig?  // an unknown shape name is refused below, by ModelFile.random
        if let name = s.model.shape {
            shape = LlamaConfig.builtinShapes[name]
        } else {
            shape = try ModelFile.config(modelPath)
        }
        let needed =
            shape.map {
                MemoryPlan.estimate($0, options: options, threads: s.train.threads).values.reduce(0, +)
            } ?? 0
        guard needed <= ProcessMemory.physicalBytes else {
            throw ValidationError(
                """
                the run needs about \(PassBenchmark.format(bytes: needed)) (memory plan at \(options.batchSize) × \
                \(options.maxLength)) but this machine has \
                \(PassBenchmark.format(bytes: ProcessMemory.physicalBytes)); lower train.batch or train.seq, set \
                method.checkpointing: true, or see leantune estimate CONFIG --budget
                """
            )
        }
        let steps = options.schedule.total, threads = s.train.threads
        GEMM.setThreads(threads)
        do { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) } catch {
            throw ValidationError(
                "\(output): cannot create the output folder (\(error.localizedDescription)); choose a writable location"
            )
        }
        guard FileManager.default.isWritableFile(atPath: output) else {
            throw ValidationError("\(output): the output folder is not writable")
        }
        let lock: OutputLock
        lock = try OutputLock(folder: output)
        defer { withExtendedLifetime(lock) {} }  // held until the run ends
        let existing = ((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).filter {
            $0 != OutputLock.fileName
        }
        guard existing.isEmpty || resume != nil else {
            throw ValidationError(
                """
                \(output) already holds files; choose a new or empty directory, or pass --resume auto to continue its \
                run
                """
            )
        }
        try Data(settings.yaml.utf8).write(to: URL(fileURLWithPath: output + "/config.yaml"), options: .atomic)
        var loaded =
            try s.model.shape.map { shape in  // pre-training from scratch
                try ModelFile.random(
                    shape: shape, tokenizer: try RunSettings.required(s.model.tokenizer, "model.tokenizer"),
                    seed: options.seed)
            } ?? ModelFile.load(modelPath, tokenizer: s.model.tokenizer, lazy: true)  // converted next
        if let note = options.precision.kernel.note { print("note: \(note)") }
        if let note = BLASCore.adjustment { print("note: \(note)") }
        loaded.model = try Trainer.model(loaded.model, for: options)
        let encoder = data.encoder(for: loaded)
        let encoded = try data.encode(encoder, maxLength: min(options.maxLength, loaded.model.config.maxSequenceLength))
        if let warning = encoder.stopTokenWarning(encoded.train) { print("warning: \(warning)") }
        let trainer = try Trainer(
            model: loaded.model, examples: encoded.train, candidates: encoded.trainCandidates, options: options)
        let checkpoints = output + "/checkpoints"
        if let resume {
            let path: String
            do { path = resume == "auto" ? try Checkpoint.latest(in: checkpoints) : resume } catch let e
                as TrainingError
            { throw ValidationError(e.message) }
            try Checkpoint.restore(trainer, from: path)
            print("resumed from \(path) at step \(trainer.step)")
        }
        let metrics = try MetricsLog(output: output, resumedAt: trainer.step)
        let console = TrainingConsole(totalSteps: steps)
        let packed = options.packing ? " (packed)" : ""
        let loss = options.objective == .languageModel ? "" : ", classification loss over the label words"
        print(
            """
            training \(modelPath) on \(encoded.train.count) examples from \(data.trainPath): \
            \(options.method.rawValue), \(steps) steps of \(options.batchSize) × ≤\(options.maxLength)\(packed)\(loss)
            """)
        let plan = MemoryPlan.estimate(loaded.model.config, options: options, threads: threads)
        print(
            "memory plan at \(options.batchSize) × \(options.maxLength): "
                + MemoryCategory.allCases.compactMap { c in
                    plan[c].flatMap { $0 > 0 ? "\(c.rawValue) \(PassBenchmark.format(bytes: $0))" : nil }
                }.joined(separator: ", "))
        // A parent may start us with these blocked (the mask is inherited): unblock them, or a stop would never arrive.
        var stops = sigset_t()
        sigemptyset(&stops)
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) }
            sigaddset(&stops, sig)
        }
        pthread_sigmask(SIG_UNBLOCK, &stops, nil)
        let heldOut = HeldOut(
            examples: encoded.eval, classification: encoded.evalClassification, tokenizer: encoder.tokenizer)
        let outcome = try trainer.run(
            LoopSettings(s), heldOut: heldOut, checkpoints: checkpoints, resolvedConfig: settings.yaml
        ) { event in
            try metrics.record(event)
            console.show(event)
            return stopRequested.load(ordering: .relaxed) ? .stop : .continue
        }
        try metrics.finish(trainer, outcome: outcome)
        if case .stopped(let step, let path) = outcome {
            console.note("interrupted at step \(step): saved \(path); continue with --resume auto")
            throw ExitCode(130)
        }
        try HFDirectory.export(loaded, to: output + "/model")
        print("wrote \(output)/model, \(output)/metrics.jsonl, metrics.csv and run.json")
    }
}
