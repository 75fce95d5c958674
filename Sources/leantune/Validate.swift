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
        do {
            let settings = try RunConfig.load(config, overrides: sets)
            _ = try settings.trainingOptions()
            // a file, or a shape from scratch
            let model = settings.string("model.shape") == nil ? ["model.path"] : ["model.tokenizer"]
            for path in model + ["data.train", "logging.output"] { _ = try settings.required(path) }
            print(settings.yaml, terminator: "")
        } catch let e as TrainingError {
            throw ValidationError(e.message)
        }
    }
}
