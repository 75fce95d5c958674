import ArgumentParser

@main
struct LeanTune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leantune",
        abstract: "Full-parameter fine-tuning of Llama-family models in small memory.",
        subcommands: [
            Train.self, Validate.self, InspectData.self, Estimate.self, Generate.self, Eval.self, Export.self,
            Inspect.self, Bench.self,
        ])
}
