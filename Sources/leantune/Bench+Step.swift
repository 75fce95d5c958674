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
            let store = model.store, layout = model.layout
            let optimizer = Trainer.optimizer(method, layout: layout)
            let lr: Float = 1e-5
            var planned = TrainingOptions()
            planned.method = method
            planned.batchSize = options.batch
            planned.maxLength = options.seq
            planned.checkpointing = checkpointing
            let plan = MemoryPlan.estimate(model.config, options: planned, threads: options.threads).values.reduce(0, +)
            defer {
                let peak = MemoryLedger.shared.snapshot().peakTotal
                print(String(format: "estimate %@ vs ledger peak %@ (%+.1f%%)", PassBenchmark.format(bytes: plan),
                             PassBenchmark.format(bytes: peak), 100 * Double(plan - peak) / Double(peak)))
            }
            var step = 0
            if method == .adamwFused {
                let sink = FusedUpdateSink(optimizer: optimizer, store: store)
                sink.learningRate = lr
                PassBenchmark.report(options, model, label: "step \(method.rawValue) (checkpointing \(checkpointing ? "on" : "off"))") {
                    step += 1
                    sink.step = step
                    _ = try! model.lossAndGradients(batch, into: sink, checkpointing: checkpointing)
                }
            } else {
                let grads = GradientSlab(layout: layout)
                PassBenchmark.report(options, model, label: "step \(method.rawValue) (checkpointing \(checkpointing ? "on" : "off"))") {
                    step += 1
                    grads.zero()
                    _ = try! model.lossAndGradients(batch, into: grads, checkpointing: checkpointing)
                    optimizer.step(store, gradients: grads, learningRate: lr, step: step)
                }
            }
        }
    }
}
