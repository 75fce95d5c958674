import Foundation

/// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`).
enum GGUFTokenizer {
    /// `tokenizer.ggml.pre` values whose split LeanTune implements, and whether they isolate digits.
    static let preTokenizers: [String: (SplitPattern, Bool)] = [
        "default": (.gpt2, false), "gpt2": (.gpt2, false), "smollm": (.gpt2, true), "llama-bpe": (.llama3, false),
    ]

    static func load(_ gguf: GGUFFile) throws -> any Tokenizer {
        let m = gguf.metadata, path = gguf.path
        let model = m["tokenizer.ggml.model"]?.string ?? "(none)"
        guard model == "gpt2" || model == "llama" else {
            throw FormatError(
                file: path, problem: "tokenizer model '\(model)' is not supported yet",
                fix: "Supported GGUF tokenizers: gpt2 (byte-level BPE) and llama (SentencePiece).")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), !tokens.isEmpty else {
            throw FormatError(
                file: path, problem: "tokenizer.ggml.tokens is missing",
                fix: "The file has no vocabulary; use one that does.")
        }
        // Token types: 3 control, 4 user-defined; both are matched verbatim in text.
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        let special = Set(types.enumerated().filter { $0.element == 3 || $0.element == 4 }.map { Int32($0.offset) })
        func id(_ key: String) throws -> Int32? {
            guard let value = m["tokenizer.ggml.\(key)"] else { return nil }
            guard let v = value.int, v >= 0, v < tokens.count else {
                throw FormatError(
                    file: path,
                    problem: "metadata 'tokenizer.ggml.\(key)' is \(value), not a token id below \(tokens.count)",
                    fix: "The file is inconsistent; convert it again.")
            }
            return Int32(v)
        }
        func flag(_ key: String, default d: Bool) -> Bool { m["tokenizer.ggml.\(key)"].map { $0 == .bool(true) } ?? d }
        let stop = Set([try id("eos_token_id"), try id("eot_token_id")].compactMap { $0 })
        if model == "llama" {
            let scores = m["tokenizer.ggml.scores"]?.array?.compactMap { $0.double.map(Float.init) } ?? []
            guard scores.count == tokens.count else {
                throw FormatError(
                    file: path, problem: "tokenizer.ggml.scores has \(scores.count) entries for \(tokens.count) tokens",
                    fix: "A SentencePiece vocabulary needs one score per token; convert the model again.")
            }
            return try ScoredPieceTokenizer(
                pieces: tokens.map { Array($0.replacingOccurrences(of: "\u{2581}", with: " ").utf8) }, scores: scores,
                bos: flag("add_bos_token", default: true) ? try id("bos_token_id") : nil, stop: stop, special: special,
                addsSpacePrefix: flag("add_space_prefix", default: true), file: path)
        }
        let merges = m["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        let pre = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let (pattern, isolateDigits) = preTokenizers[pre] else {
            throw FormatError(
                file: path, problem: "pre-tokenizer '\(pre)' is not supported yet",
                fix: "Supported: \(preTokenizers.keys.sorted().joined(separator: ", ")).")
        }
        return try ByteLevelBPETokenizer(
            tokens: tokens, merges: merges, special: special,
            bos: flag("add_bos_token", default: false) ? try id("bos_token_id") : nil, stop: stop,
            split: pattern, isolateDigits: isolateDigits, file: path)
    }

    /// The texts of the BOS and EOS tokens (chat templates use them even when BOS is not added).
    static func templateTokens(_ gguf: GGUFFile) -> (bos: String, eos: String) {
        let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array ?? []
        func text(_ key: String) -> String {
            guard let id = gguf.metadata["tokenizer.ggml.\(key)"]?.int, id >= 0, id < tokens.count else { return "" }
            return tokens[id].string ?? ""
        }
        return (text("bos_token_id"), text("eos_token_id"))
    }
}
