import ArgumentParser
import Llama
import Methods
import TensorCore
import Training

extension Bench {
    /// One full training step of a built-in method on random weights.
    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One training step (forward, backward, update) of a method: adamw, adamw-fused, lion, sgd.")
        @OptionGroup var options: PassOptions
        @Option(help: "adamw and lion and sgd keep a full gradient slab; adamw-fused updates each tensor inside backward.")
        var method: TrainingOptions.Method = .adamw
        @Flag(help: "Keep only each layer's input and recompute the rest in backward.")
        var checkpointing = false

        func run() throws {
            let (model, batch) = try PassBenchmark.setUp(options)
            var planned = TrainingOptions()
            planned.method = method
            planned.batchSize = options.batch
            planned.maxLength = options.seq
            planned.checkpointing = checkpointing
            planned.clipNorm = method == .adamwFused ? nil : 1.0  // as a real run: clipping where it is possible
            let plan = MemoryPlan.estimate(model.config, options: planned, threads: options.threads).values.reduce(0, +)
            defer {
                let peak = MemoryLedger.shared.snapshot().peakTotal
                print(String(format: "estimate %@ vs ledger peak %@ (%+.1f%%)", PassBenchmark.format(bytes: plan),
                             PassBenchmark.format(bytes: peak), 100 * Double(plan - peak) / Double(peak)))
            }
            let trainingMethod = Trainer.method(planned, model: model)
            var step = 0, guardian = NonFiniteGuard()
            PassBenchmark.report(options, model, label: "step \(method.rawValue) (checkpointing \(checkpointing ? "on" : "off"))") {
                step += 1
                _ = try! trainingMethod.step(model, batches: [batch], learningRate: 1e-5, step: step, nonFinite: &guardian)
            }
        }
    }
}
