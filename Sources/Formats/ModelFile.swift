import Llama
import TensorCore

/// A model and its tokenizer, loaded from whatever the user pointed at.
public struct LoadedModel {
    public let model: LlamaModel
    public let tokenizer: any Tokenizer
    /// The chat template the checkpoint names, if it has one.
    public var chatTemplate: ChatTemplate?
}

/// Chooses the reader for a model path.
public enum ModelFile {
    /// Loads `path`; `tokenizerPath` is required for llama2.c checkpoints (their tokenizer is a separate file).
    public static func load(_ path: String, tokenizer tokenizerPath: String?, ledger: MemoryLedger = .shared) throws -> LoadedModel {
        if path.hasSuffix(".gguf") {
            let gguf = try GGUFFile(path: path)
            let (config, store) = try GGUFModel.load(gguf, ledger: ledger)
            let tokenizer = try GGUFTokenizer.load(gguf)
            guard tokenizer.vocabularySize == config.vocabSize else {
                throw FormatError(file: path, problem: "the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary is \(config.vocabSize)",
                                  fix: "The file is inconsistent; convert it again.")
            }
            return LoadedModel(model: try LlamaModel(config: config, store: store, ledger: ledger), tokenizer: tokenizer,
                               chatTemplate: gguf.metadata["tokenizer.chat_template"]?.string.flatMap(ChatTemplate.recognise))
        }
        guard path.hasSuffix(".bin") else {
            throw FormatError(file: path, problem: "unrecognised model format",
                              fix: "Supported: GGUF (.gguf) and llama2.c checkpoints (.bin, with --tokenizer).")
        }
        guard let tokenizerPath else {
            throw FormatError(file: path, problem: "a llama2.c checkpoint has no tokenizer inside",
                              fix: "Pass its tokenizer.bin with --tokenizer.")
        }
        let (config, store) = try Llama2cCheckpoint.load(path, ledger: ledger)
        let tokenizer = try Llama2cTokenizer(path: tokenizerPath, vocabularySize: config.vocabSize)
        return LoadedModel(model: try LlamaModel(config: config, store: store, ledger: ledger), tokenizer: tokenizer, chatTemplate: nil)
    }
}
