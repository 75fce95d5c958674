import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore
import Training

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict a training run's memory per category from shapes alone (no weights are loaded).")

    @Argument(help: "YAML training configuration (its model.path is read for the shape only).")
    var config: String?
    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var sets: [String] = []
    @Option(help: "A built-in shape instead of the config's model: \(LlamaConfig.builtinShapes.keys.sorted().joined(separator: ", ")).")
    var shape: String?

    func run() throws {
        let settings: RunConfig, options: TrainingOptions
        do {
            settings = try RunConfig.load(config, overrides: sets)
            options = try settings.trainingOptions()
        } catch let e as TrainingError { throw ValidationError(e.message) }
        let model: LlamaConfig
        if let shape = shape ?? settings.string("model.shape") {
            guard let s = LlamaConfig.builtinShapes[shape] else { throw ValidationError("unknown shape '\(shape)'") }
            model = s
        } else {
            guard let path = settings.string("model.path") else { throw ValidationError("give a config with model.path or model.shape, or --shape") }
            model = try ModelFile.config(path)
        }
        let plan = MemoryPlan.estimate(model, options: options, threads: settings.int("train.threads"))
        print("\(options.method.rawValue), batch \(options.batchSize) × \(options.maxLength)\(options.checkpointing ? ", checkpointing" : ""): \(String(format: "%.1f", Double(ParameterLayout(model).parameterCount) / 1e6)) M parameters")
        for category in MemoryCategory.allCases where (plan[category] ?? 0) > 0 {
            print("  " + category.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0) + PassBenchmark.format(bytes: plan[category]!))
        }
        print("  " + "total".padding(toLength: 16, withPad: " ", startingAt: 0) + PassBenchmark.format(bytes: plan.values.reduce(0, +)))
    }
}
