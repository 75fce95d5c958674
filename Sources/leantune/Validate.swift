import ArgumentParser
import Foundation
import Training

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a training configuration and print it resolved (defaults, file, --set).")

    @Argument(help: "YAML configuration file.")
    var config: String
    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var sets: [String] = []

    func run() throws {
        let settings = try RunConfig.load(config, overrides: sets)
        _ = try settings.trainingOptions()
        // a file, or a shape from scratch
        let s = try settings.sections()
        let model = s.model.shape == nil ? (s.model.path, "model.path") : (s.model.tokenizer, "model.tokenizer")
        for (value, key) in [model, (s.data.train, "data.train"), (s.logging.output, "logging.output")] {
            _ = try RunSettings.required(value, key)
        }
        print(settings.yaml, terminator: "")
    }
}
