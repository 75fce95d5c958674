import ArgumentParser
import Llama
import Methods
import TensorCore
import Training

extension Bench {
    /// One full training step of a built-in method on random weights.
    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "One training step of a method: \(MethodRegistry.names)."
        )
        @OptionGroup var options: PassOptions
        @Option(help: "The method: \(MethodRegistry.names).")
        var method: TrainingOptions.Method = .adamw
        @Flag(help: "Keep only each layer's input and recompute the rest in backward.")
        var checkpointing = false
        @Option(
            help:
                """
                Weight store: auto (the method's paper: bf16 for mezo/dizo in bf16, INT8 for qft, else fp32), fp32, \
                bf16.
                """
        )
        var weights: TrainingOptions.Weights = .auto
        @Option(
            name: .customLong("set"),
            help:
                """
                A setting of the method or the run, section.key=value (repeatable), e.g. method.rank=64 or \
                method.gradients=stack.
                """
        )
        var sets: [String] = []

        func run() throws {
            // As `bench methods` and a real run: the catalog's settings (clipping where the method allows it).
            let catalog = MethodCatalog.entries.first { $0.label == method.rawValue }?.settings ?? []
            let planned: TrainingOptions
            planned = try RunConfig.load(
                nil,
                overrides: catalog + sets + [
                    "train.batch=\(options.batch)", "train.seq=\(options.seq)",
                    "train.precision=\(options.precision.rawValue)", "train.weights=\(weights.rawValue)",
                ] + (checkpointing ? ["method.checkpointing=true"] : [])
            ).trainingOptions()
            let label =
                "step \(method.definition.label(planned)) (checkpointing \(checkpointing ? "on" : "off"))"
            _ = try StepBenchmark.run(planned, options, label: label)
        }
    }
}

/// One method's training step timed on random weights, with its memory against the plan.
enum StepBenchmark {
    struct Result {
        var pass: PassBenchmark.Result
        /// Seconds per step of periodic work (DiZO's projection, GaLore's refresh) the timed steps do not contain.
        var periodicSeconds: Double?
        /// The memory plan (`leantune estimate`) per category.
        var estimate: [MemoryCategory: Int]
        /// Medians over the timed steps of what the method reports about its step.
        var details: [String: Double]
    }

    static func run(_ planned: TrainingOptions, _ options: PassOptions, label: String) throws -> Result {
        let method = planned.method
        let (model, batch) = try { () throws -> (LlamaModel, TokenBatch) in  // the random source is gone after this
            let (random, batch) = try PassBenchmark.setUp(options)
            return (try Trainer.model(random, for: planned), batch)
        }()
        let plan = MemoryPlan.estimate(model.config, options: planned, threads: options.threads)
        // QFT's refresh: timed below
        let trainingMethod = try Trainer.method(planned, model: model, stepsPerEpoch: .max)
        // From here on: the step (QFT converted its weights from an fp32 copy, now gone).
        MemoryLedger.shared.resetPeak()
        ProcessMemory.resetPeak()
        var step = 0, guardian = NonFiniteGuard(), forward = 0.0, rest: [Double] = [], details: [[String: Double]] = []
        let inputs = StepInputs(
            batches: [batch],
            objective: {
                let start = monotonicNanoseconds()
                defer { forward += Double(monotonicNanoseconds() - start) * 1e-9 }
                return try model.loss(batch)
            }, auxiliaryObjective: { _ in try model.loss(batch) })
        let pass = PassBenchmark.report(options, model, label: label) {
            step += 1
            forward = 0
            let start = monotonicNanoseconds()
            details.append(
                try! trainingMethod.step(model, inputs: inputs, learningRate: 1e-6, step: step, nonFinite: &guardian)
                    .details)
            rest.append(Double(monotonicNanoseconds() - start) * 1e-9 - forward)
            details[details.count - 1]["step_seconds"] = Double(monotonicNanoseconds() - start) * 1e-9
        }
        let planBytes = plan.values.reduce(0, +), peak = pass.ledger.peakTotal
        print(
            String(
                format: "estimate %@ vs ledger peak %@ (%+.1f%%)", PassBenchmark.format(bytes: planBytes),
                PassBenchmark.format(bytes: peak), 100 * Double(planBytes - peak) / Double(peak)))
        let timed = details.dropFirst()  // the warm-up step is not counted, as in the timing
        func median(_ key: String) -> Double { timed.map { $0[key] ?? .nan }.sorted()[timed.count / 2] }
        var medians = Dictionary(uniqueKeysWithValues: Set(timed.flatMap(\.keys)).map { ($0, median($0)) })
        if method.isZerothOrder {  // what is not a forward pass: the perturbation and update passes
            medians["non_forward_seconds"] = rest.dropFirst().sorted()[(rest.count - 1) / 2]
            print(
                String(
                    format: "perturbation and update passes: median %.3f s per step (forward passes: the rest)",
                    medians["non_forward_seconds"]!))
        }
        // Work done every so many steps, which the timed steps do not contain, and what the steps' details say.
        let definition = planned.method.definition
        let periodic = try definition.periodicWork(trainingMethod, model: model, options: planned, inputs: inputs)
        for work in [periodic, definition.stepSummary(planned, steps: Array(timed))].compactMap({ $0 }) {
            print(work.report)
            medians.merge(work.details) { _, new in new }
        }
        return Result(pass: pass, periodicSeconds: periodic?.secondsPerStep, estimate: plan, details: medians)
    }
}
