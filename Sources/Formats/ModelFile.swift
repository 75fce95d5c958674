import Foundation
import Llama
import TensorCore

/// A model and its tokenizer, loaded from whatever the user pointed at.
public struct LoadedModel {
    /// The model (a method may replace its weight store, e.g. QFT's INT8 one).
    public var model: LlamaModel
    public let tokenizer: any Tokenizer
    /// The chat template the checkpoint names, if it has one.
    public var chatTemplate: ChatTemplate?
    /// The template's source text (Jinja), kept for export.
    public var chatTemplateSource: String?
    /// What was read: the format and its tensor types, e.g. "GGUF v3: 211 × Q4_1, 61 × F32".
    public var source: String = ""
    /// The texts chat templates use for `bos_token` and `eos_token`.
    public var templateTokens: (bos: String, eos: String) = ("", "")
}

extension LoadedModel {
    /// `model` with a tokenizer of the 256 byte-level tokens and no chat template: for writing models whose
    /// tokenizer does not matter (benchmarks of loading).
    public init(bytesTokenizer model: LlamaModel) throws {
        self.init(
            model: model,
            tokenizer: try ByteLevelBPETokenizer(
                tokens: (0..<256).map { String(ByteLevel.character(UInt8($0))) }, merges: [], special: [], bos: nil,
                stop: [],
                isolateDigits: false, file: "bytes"), chatTemplate: nil, chatTemplateSource: nil)
    }
}

/// "3 × F32, 2 × BF16", most frequent first.
func typeCounts(_ names: [String]) -> String {
    Dictionary(names.map { ($0, 1) }, uniquingKeysWith: +).sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        .map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
}

/// Chooses the reader for a model path.
public enum ModelFile {
    /// Refuses weights that hold NaN or infinite values, naming the first such tensor: nothing can train from them.
    static func checkFinite(_ store: any ParameterStore, _ layout: ParameterLayout, file: String) throws {
        for (id, info) in layout.parameters.enumerated() {
            let bad = store.withFloats(id) { Vector.nonFiniteCount($0.baseAddress!, $0.count) }
            if bad > 0 {
                throw FormatError(
                    file: file, problem: "tensor '\(info.name)' holds \(bad) NaN or infinite values",
                    fix: "The checkpoint is damaged (or was saved from a diverged run); use an earlier one.")
            }
        }
    }

    /// The shape of the model at `path`, reading headers and metadata only (no weights).
    public static func config(_ path: String) throws -> LlamaConfig {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try HFConfig.parse(try HFDirectory.json(path + "/config.json"), file: path + "/config.json")
        }
        if path.hasSuffix(".gguf") { return try GGUFModel.config(GGUFFile(path: path)) }
        return try Llama2cCheckpoint.config(path)
    }

    /// A model of built-in shape `shape` with random weights (N(0, 0.02²) from `seed`, norms 1), for pre-training
    /// from scratch, with the tokenizer at `tokenizerPath` (a llama2.c tokenizer.bin or a tokenizer.json) whose
    /// vocabulary must be the shape's.
    public static func random(
        shape: String, tokenizer tokenizerPath: String, seed: UInt64, ledger: MemoryLedger = .shared
    ) throws -> LoadedModel {
        guard let config = LlamaConfig.builtinShapes[shape] else {
            throw FormatError(
                file: shape, problem: "no built-in shape of that name",
                fix: "Choose one of \(LlamaConfig.builtinShapes.keys.sorted().joined(separator: ", ")).")
        }
        let tokenizer: any Tokenizer =
            tokenizerPath.hasSuffix(".json")
            ? try HFTokenizer.load(tokenizerPath, tokenizerConfig: [:], generationConfig: [:])
            : try ScoredPieceTokenizer.llama2c(path: tokenizerPath, vocabularySize: config.vocabSize)
        guard tokenizer.vocabularySize == config.vocabSize else {
            throw FormatError(
                file: tokenizerPath,
                problem:
                    "the tokenizer has \(tokenizer.vocabularySize) tokens but shape \(shape) has \(config.vocabSize)",
                fix: "Use a tokenizer of the shape's vocabulary.")
        }
        // Generated as read: the run converts them into the store it trains in, with no fp32 copy of a large model.
        let weights = RandomParameterStore(layout: ParameterLayout(config), seed: seed, ledger: ledger)
        return LoadedModel(
            model: try LlamaModel(config: config, store: weights, ledger: ledger), tokenizer: tokenizer,
            chatTemplate: nil,
            chatTemplateSource: nil, source: "random weights of shape \(shape)")
    }

    /// Loads `path`; `tokenizerPath` is required for llama2.c checkpoints (their tokenizer is a separate file).
    /// - Parameter lazy: a Hugging Face directory's weights stay in the memory map until converted (see
    ///   ``HFDirectory/load(_:lazy:ledger:)``); other formats are always read into fp32.
    public static func load(
        _ path: String, tokenizer tokenizerPath: String?, lazy: Bool = false, ledger: MemoryLedger = .shared
    ) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            var loaded = try HFDirectory.load(path, lazy: lazy, ledger: ledger)
            try checkFinite(loaded.model.store, loaded.model.layout, file: path)
            loaded.source =
                "Hugging Face directory: "
                + typeCounts(
                    try HFDirectory.weightFiles(path).flatMap { $0.tensors.values.map { "\($0.dtype)".uppercased() } })
            return loaded
        }
        if path.hasSuffix(".gguf") {
            let gguf = try GGUFFile(path: path)
            let (config, store) = try GGUFModel.load(gguf, ledger: ledger)
            try checkFinite(store, store.layout, file: path)
            let tokenizer = try GGUFTokenizer.load(gguf)
            guard tokenizer.vocabularySize == config.vocabSize else {
                throw FormatError(
                    file: path,
                    problem:
                        """
                        the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary is \
                        \(config.vocabSize)
                        """,
                    fix: "The file is inconsistent; convert it again.")
            }
            let template = gguf.metadata["tokenizer.chat_template"]?.string
            return LoadedModel(
                model: try LlamaModel(config: config, store: store, ledger: ledger), tokenizer: tokenizer,
                chatTemplate: template.flatMap(ChatTemplate.recognise), chatTemplateSource: template,
                source: "GGUF v\(gguf.version): " + typeCounts(gguf.tensors.values.map(\.type.name)),
                templateTokens: GGUFTokenizer.templateTokens(gguf))
        }
        guard path.hasSuffix(".bin") else {
            throw FormatError(
                file: path, problem: "unrecognised model format",
                fix:
                    """
                    Supported: Hugging Face directories, GGUF (.gguf) and llama2.c checkpoints (.bin, with \
                    --tokenizer).
                    """
            )
        }
        guard let tokenizerPath else {
            throw FormatError(
                file: path, problem: "a llama2.c checkpoint has no tokenizer inside",
                fix: "Pass its tokenizer.bin with --tokenizer.")
        }
        let (config, store) = try Llama2cCheckpoint.load(path, ledger: ledger)
        try checkFinite(store, store.layout, file: path)
        let tokenizer = try ScoredPieceTokenizer.llama2c(path: tokenizerPath, vocabularySize: config.vocabSize)
        return LoadedModel(
            model: try LlamaModel(config: config, store: store, ledger: ledger), tokenizer: tokenizer,
            chatTemplate: nil, chatTemplateSource: nil,
            source: "llama2.c checkpoint: F32")
    }
}
