import Foundation

/// Hugging Face `tokenizer.json` (+ tokenizer_config.json, generation_config.json) ↔ LeanTune tokenizers.
/// Reads and writes byte-level BPE (GPT-2 split, optionally after `Digits(individual_digits)`).
enum HFTokenizer {
    static func load(_ path: String, tokenizerConfig: [String: Any], generationConfig: [String: Any]) throws -> any Tokenizer {
        let j = try HFDirectory.json(path)
        func fail(_ problem: String) -> FormatError {
            FormatError(file: path, problem: problem, fix: "Supported tokenizer.json: byte-level BPE (GPT-2, SmolLM and Llama 3 splits) and SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama).")
        }
        guard let model = j["model"] as? [String: Any], (model["type"] as? String) == "BPE",
              let vocab = model["vocab"] as? [String: Int] else { throw fail("the model is not BPE with a vocab") }
        let sentencePiece = (model["byte_fallback"] as? Bool) == true
        let merges: [String] = ((model["merges"] as? [Any]) ?? []).compactMap {
            ($0 as? String) ?? (($0 as? [String]).map { $0.joined(separator: " ") })
        }
        let added = (j["added_tokens"] as? [[String: Any]]) ?? []
        let size = max(vocab.values.max() ?? -1, added.compactMap { $0["id"] as? Int }.max() ?? -1) + 1
        var tokens = [String](repeating: "", count: size)
        for (t, id) in vocab where id >= 0 { tokens[id] = t }
        var special = Set<Int32>()
        for a in added {
            guard let id = a["id"] as? Int, let content = a["content"] as? String, id >= 0 else { continue }
            tokens[id] = content
            special.insert(Int32(id))
        }
        let ids = Dictionary(tokens.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        func tokenID(_ value: Any?) -> Int32? {
            let name = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
            return name.flatMap { ids[$0] }
        }
        let bos = (tokenizerConfig["add_bos_token"] as? Bool) == true ? tokenID(tokenizerConfig["bos_token"]) : nil
        var stop = Set([tokenID(tokenizerConfig["eos_token"])].compactMap { $0 })
        if let e = generationConfig["eos_token_id"] as? Int { stop.insert(Int32(e)) }
        if let e = generationConfig["eos_token_id"] as? [Int] { stop.formUnion(e.map(Int32.init)) }
        if sentencePiece {
            return try SentencePieceBPETokenizer(tokens: tokens, merges: merges, special: special, bos: bos, stop: stop,
                                                 prependsSpace: try prependsSpace(j, fail), file: path)
        }
        let (pattern, isolateDigits) = try preTokenizer(j["pre_tokenizer"], fail)
        return try ByteLevelBPETokenizer(tokens: tokens, merges: merges, special: special, bos: bos, stop: stop,
                                         split: pattern, isolateDigits: isolateDigits, file: path)
    }

    /// Whether a SentencePiece-style tokenizer prepends "▁": the Llama 2 normalizer (Prepend("▁"), Replace(" ", "▁"))
    /// with no pre-tokenizer, or Metaspace("▁", prepend_scheme always) with no normalizer.
    private static func prependsSpace(_ j: [String: Any], _ fail: (String) -> FormatError) throws -> Bool {
        let normalizer = j["normalizer"] as? [String: Any], pre = j["pre_tokenizer"] as? [String: Any]
        let steps = (normalizer?["normalizers"] as? [[String: Any]]) ?? normalizer.map { [$0] } ?? []
        func isReplaceSpace(_ n: [String: Any]) -> Bool {
            (n["type"] as? String) == "Replace" && ((n["pattern"] as? [String: Any])?["String"] as? String) == " " && (n["content"] as? String) == "▁"
        }
        if pre == nil, let last = steps.last, isReplaceSpace(last) {
            let prepend = steps.dropLast()
            if prepend.isEmpty { return false }
            if prepend.count == 1, (prepend[0]["type"] as? String) == "Prepend", (prepend[0]["prepend"] as? String) == "▁" { return true }
        }
        if normalizer == nil, let pre, (pre["type"] as? String) == "Metaspace", (pre["replacement"] as? String) == "▁",
           (pre["prepend_scheme"] as? String) == "always" || (pre["add_prefix_space"] as? Bool) == true {
            return true
        }
        throw fail("this SentencePiece-style normalizer / pre-tokenizer combination is not supported yet")
    }

    /// The split and digit isolation of the supported pre-tokenizers: ByteLevel with its GPT-2 regex,
    /// Sequence[Digits(individual), ByteLevel] (SmolLM), Sequence[Split(Llama-3 regex, isolated), ByteLevel without regex].
    private static func preTokenizer(_ value: Any?, _ fail: (String) -> FormatError) throws -> (SplitPattern, Bool) {
        func isByteLevel(_ p: [String: Any], regex: Bool) -> Bool {
            (p["type"] as? String) == "ByteLevel" && (p["use_regex"] as? Bool ?? true) == regex && !(p["add_prefix_space"] as? Bool ?? false)
        }
        guard let p = value as? [String: Any] else { throw fail("no pre_tokenizer") }
        if isByteLevel(p, regex: true) { return (.gpt2, false) }
        if (p["type"] as? String) == "Sequence", let parts = p["pretokenizers"] as? [[String: Any]], parts.count == 2 {
            if (parts[0]["type"] as? String) == "Digits", (parts[0]["individual_digits"] as? Bool) == true, isByteLevel(parts[1], regex: true) {
                return (.gpt2, true)
            }
            if (parts[0]["type"] as? String) == "Split", ((parts[0]["pattern"] as? [String: Any])?["Regex"] as? String) == SplitPattern.llama3Regex,
               (parts[0]["behavior"] as? String)?.lowercased() == "isolated", isByteLevel(parts[1], regex: false) {
                return (.llama3, false)
            }
        }
        throw fail("pre_tokenizer \(p["type"] as? String ?? "?") with these settings is not supported yet")
    }

    /// Writes tokenizer.json and tokenizer_config.json for a byte-level BPE tokenizer; other kinds
    /// are reported back as not written.
    static func export(_ loaded: LoadedModel, to dir: String) throws -> [String] {
        guard let t = loaded.tokenizer as? ByteLevelBPETokenizer else {
            return ["tokenizer files: a \(type(of: loaded.tokenizer)) has no tokenizer.json form yet; copy the original tokenizer"]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true]
        var pre: [String: Any] = t.isolatesDigits
            ? ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]] : byteLevel
        if t.splitPattern == .llama3 {
            var plain = byteLevel
            plain["use_regex"] = false
            pre = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": SplitPattern.llama3Regex], "behavior": "Isolated", "invert": false], plain]]
        }
        let specials = t.specialTokens.values.sorted()
        var vocab: [String: Int] = [:]
        for (i, token) in t.tokens.enumerated() where vocab[token] == nil { vocab[token] = i }
        let json: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(), "normalizer": NSNull(), "post_processor": NSNull(),
            "added_tokens": specials.map { id in
                ["id": Int(id), "content": t.tokens[Int(id)], "single_word": false, "lstrip": false, "rstrip": false,
                 "normalized": false, "special": true] as [String: Any]
            },
            "pre_tokenizer": pre, "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "vocab": vocab, "merges": t.merges],
        ]
        try HFDirectory.write(json, to: dir + "/tokenizer.json")
        var config: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": t.bos != nil,
                                     "model_max_length": loaded.model.config.maxSequenceLength]
        if let bos = t.bos { config["bos_token"] = t.tokens[Int(bos)] } else if !loaded.templateTokens.bos.isEmpty {
            config["bos_token"] = loaded.templateTokens.bos
        }
        if let eos = t.stopTokens.sorted().first { config["eos_token"] = t.tokens[Int(eos)] }
        if let template = loaded.chatTemplateSource { config["chat_template"] = template }
        try HFDirectory.write(config, to: dir + "/tokenizer_config.json")
        return []
    }
}
