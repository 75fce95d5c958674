import ArgumentParser
import Formats
import TensorCore

/// The model a command works on.
struct ModelOptions: ParsableArguments {
    @Option(help: "Model: a Hugging Face directory, a GGUF file or a llama2.c .bin.")
    var model: String
    @Option(help: "Tokenizer file (llama2.c only; other formats carry their own).")
    var tokenizer: String?

    func load(ledger: MemoryLedger = .shared) throws -> LoadedModel {
        try ModelFile.load(model, tokenizer: tokenizer, ledger: ledger)
    }
}
