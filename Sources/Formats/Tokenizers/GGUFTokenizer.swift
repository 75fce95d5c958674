/// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`).
enum GGUFTokenizer {
    /// `tokenizer.ggml.pre` values whose split LeanTune implements, and whether they isolate digits.
    static let preTokenizers: [String: (SplitPattern, Bool)] = [
        "default": (.gpt2, false), "gpt2": (.gpt2, false), "smollm": (.gpt2, true), "llama-bpe": (.llama3, false),
    ]

    static func load(_ gguf: GGUFFile) throws -> any Tokenizer {
        let m = gguf.metadata, path = gguf.path
        let model = m["tokenizer.ggml.model"]?.string ?? "(none)"
        guard model == "gpt2" else {
            throw FormatError(file: path, problem: "tokenizer model '\(model)' is not supported yet",
                              fix: "Supported GGUF tokenizers: gpt2 (byte-level BPE).")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), !tokens.isEmpty else {
            throw FormatError(file: path, problem: "tokenizer.ggml.tokens is missing", fix: "The file has no vocabulary; use one that does.")
        }
        let merges = m["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        let pre = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let (pattern, isolateDigits) = preTokenizers[pre] else {
            throw FormatError(file: path, problem: "pre-tokenizer '\(pre)' is not supported yet",
                              fix: "Supported: \(preTokenizers.keys.sorted().joined(separator: ", ")).")
        }
        // Token types: 3 control, 4 user-defined; both are matched verbatim in text.
        let types = m["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        let special = Set(types.enumerated().filter { $0.element == 3 || $0.element == 4 }.map { Int32($0.offset) })
        func id(_ key: String) -> Int32? { m["tokenizer.ggml.\(key)"]?.int.map(Int32.init) }
        let addBOS = m["tokenizer.ggml.add_bos_token"].map { $0 == .bool(true) } ?? false
        let stop = Set([id("eos_token_id"), id("eot_token_id")].compactMap { $0 })
        return try ByteLevelBPETokenizer(tokens: tokens, merges: merges, special: special,
                                         bos: addBOS ? id("bos_token_id") : nil, stop: stop,
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
