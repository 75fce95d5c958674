import Foundation
import Llama

/// Hugging Face `tokenizer.json` (+ tokenizer_config.json, generation_config.json) ↔ LeanTune tokenizers.
/// Reads and writes byte-level BPE (GPT-2 split, optionally after `Digits(individual_digits)`).
enum HFTokenizer {
    static func load(
        _ path: String, tokenizerConfig: [String: Any], generationConfig: [String: Any]
    ) throws -> any Tokenizer {
        let j = try HFDirectory.json(path)
        func fail(_ problem: String) -> FormatError {
            FormatError(
                file: path, problem: problem,
                fix:
                    """
                    Supported tokenizer.json: byte-level BPE (GPT-2, SmolLM and Llama 3 splits) and \
                    SentencePiece-style BPE with byte fallback (Llama 2, TinyLlama).
                    """
            )
        }
        guard let model = j["model"] as? [String: Any], (model["type"] as? String) == "BPE",
            let vocab = model["vocab"] as? [String: Int]
        else { throw fail("the model is not BPE with a vocab") }
        let sentencePiece = (model["byte_fallback"] as? Bool) == true
        let merges: [String] = ((model["merges"] as? [Any]) ?? []).compactMap {
            ($0 as? String) ?? (($0 as? [String]).map { $0.joined(separator: " ") })
        }
        let added = (j["added_tokens"] as? [[String: Any]]) ?? []
        let limit = LlamaConfig.vocabularyLimit
        if let (token, id) = vocab.first(where: { !(0..<limit).contains($0.value) }) {
            throw fail("model.vocab gives token '\(token.prefix(40))' the id \(id), outside 0..<\(limit)")
        }
        if let bad = added.first(where: { ($0["id"] as? Int).map { !(0..<limit).contains($0) } ?? false }) {
            throw fail("added_tokens has an id \(bad["id"] ?? "?") outside 0..<\(limit)")
        }
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
        // BOS: tokenizer_config's add_bos_token, or a TemplateProcessing post-processor that starts with a special
        // token.
        let single = ((j["post_processor"] as? [String: Any])?["single"] as? [[String: Any]])?.first
        let templateBOS = ((single?["SpecialToken"] as? [String: Any])?["id"] as? String).flatMap { ids[$0] }
        let bos =
            (tokenizerConfig["add_bos_token"] as? Bool) == true ? tokenID(tokenizerConfig["bos_token"]) : templateBOS
        var stop = Set([tokenID(tokenizerConfig["eos_token"])].compactMap { $0 })
        let eos =
            (generationConfig["eos_token_id"] as? Int).map { [$0] } ?? (generationConfig["eos_token_id"] as? [Int])
            ?? []
        if let bad = eos.first(where: { !(0..<size).contains($0) }) {
            throw FormatError(
                file: (path as NSString).deletingLastPathComponent + "/generation_config.json",
                problem: "eos_token_id \(bad) is not a token id below \(size)",
                fix: "Use the generation_config.json that came with the model.")
        }
        stop.formUnion(eos.map { Int32($0) })
        if sentencePiece {
            return try SentencePieceBPETokenizer(
                tokens: tokens, merges: merges, special: special, bos: bos, stop: stop,
                prependsSpace: try prependsSpace(j, fail), file: path)
        }
        let (pattern, isolateDigits) = try preTokenizer(j["pre_tokenizer"], fail)
        return try ByteLevelBPETokenizer(
            tokens: tokens, merges: merges, special: special, bos: bos, stop: stop,
            split: pattern, isolateDigits: isolateDigits, file: path)
    }

    /// Whether a SentencePiece-style tokenizer prepends "▁": the Llama 2 normalizer (Prepend("▁"), Replace(" ", "▁"))
    /// with no pre-tokenizer, or Metaspace("▁", prepend_scheme always) with no normalizer.
    private static func prependsSpace(_ j: [String: Any], _ fail: (String) -> FormatError) throws -> Bool {
        let normalizer = j["normalizer"] as? [String: Any], pre = j["pre_tokenizer"] as? [String: Any]
        let steps = (normalizer?["normalizers"] as? [[String: Any]]) ?? normalizer.map { [$0] } ?? []
        func isReplaceSpace(_ n: [String: Any]) -> Bool {
            (n["type"] as? String) == "Replace" && ((n["pattern"] as? [String: Any])?["String"] as? String) == " "
                && (n["content"] as? String) == "▁"
        }
        if pre == nil, let last = steps.last, isReplaceSpace(last) {
            let prepend = steps.dropLast()
            if prepend.isEmpty { return false }
            if prepend.count == 1, (prepend[0]["type"] as? String) == "Prepend",
                (prepend[0]["prepend"] as? String) == "▁"
            {
                return true
            }
        }
        if normalizer == nil, let pre, (pre["type"] as? String) == "Metaspace", (pre["replacement"] as? String) == "▁",
            (pre["prepend_scheme"] as? String) == "always" || (pre["add_prefix_space"] as? Bool) == true
        {
            return true
        }
        throw fail("this SentencePiece-style normalizer / pre-tokenizer combination is not supported yet")
    }

    /// The split and digit isolation of the supported pre-tokenizers: ByteLevel with its GPT-2 regex,
    /// Sequence[Digits(individual), ByteLevel] (SmolLM), Sequence[Split(Llama-3 regex, isolated), ByteLevel without
    /// regex].
    private static func preTokenizer(_ value: Any?, _ fail: (String) -> FormatError) throws -> (SplitPattern, Bool) {
        func isByteLevel(_ p: [String: Any], regex: Bool) -> Bool {
            (p["type"] as? String) == "ByteLevel" && (p["use_regex"] as? Bool ?? true) == regex
                && !(p["add_prefix_space"] as? Bool ?? false)
        }
        guard let p = value as? [String: Any] else { throw fail("no pre_tokenizer") }
        if isByteLevel(p, regex: true) { return (.gpt2, false) }
        if (p["type"] as? String) == "Sequence", let parts = p["pretokenizers"] as? [[String: Any]], parts.count == 2 {
            if (parts[0]["type"] as? String) == "Digits", (parts[0]["individual_digits"] as? Bool) == true,
                isByteLevel(parts[1], regex: true)
            {
                return (.gpt2, true)
            }
            if (parts[0]["type"] as? String) == "Split",
                ((parts[0]["pattern"] as? [String: Any])?["Regex"] as? String) == SplitPattern.llama3Regex,
                (parts[0]["behavior"] as? String)?.lowercased() == "isolated", isByteLevel(parts[1], regex: false)
            {
                return (.llama3, false)
            }
        }
        throw fail("pre_tokenizer \(p["type"] as? String ?? "?") with these settings is not supported yet")
    }

    /// Writes tokenizer.json and tokenizer_config.json for any of LeanTune's tokenizers.
    static func export(_ loaded: LoadedModel, to dir: String) throws -> [String] {
        let tokenizer = loaded.tokenizer
        var tokens: [String], merges: [String], specials: [String: Int32], json: [String: Any]
        switch tokenizer {
        case let t as ByteLevelBPETokenizer:
            (tokens, merges, specials) = (t.tokens, t.merges, t.specialTokens)
            json = byteLevelParts(t)
        case let t as SentencePieceBPETokenizer:
            (tokens, merges, specials) = (t.tokens, t.mergeList, t.specialTokens)
            json = sentencePieceParts(prependsSpace: t.prependsSpace)
        case let t as ScoredPieceTokenizer:
            func sp(_ bytes: [UInt8]) -> String {
                String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "\u{2581}")
            }
            tokens = t.pieces.map(sp)
            merges = t.derivedMerges().map { sp($0.left) + " " + sp($0.right) }
            specials = t.specialTokens
            for id in [t.bos].compactMap({ $0 }) + t.stopTokens { specials[tokens[Int(id)]] = id }
            json = sentencePieceParts(prependsSpace: t.addsSpacePrefix)
        default:
            return ["tokenizer files: a \(type(of: tokenizer)) has no tokenizer.json form"]
        }
        var vocab: [String: Int] = [:]
        for (i, token) in tokens.enumerated() where vocab[token] == nil { vocab[token] = i }
        var model = json["model"] as! [String: Any]
        model["vocab"] = vocab
        model["merges"] = merges
        json["model"] = model
        json["version"] = "1.0"
        for key in ["truncation", "padding"] { json[key] = NSNull() }
        json["post_processor"] = NSNull()
        // BOS is added by a TemplateProcessing post-processor, as in Llama's tokenizer.json
        if let bos = tokenizer.bos {
            let text = tokens[Int(bos)]
            let item: [String: Any] = ["SpecialToken": ["id": text, "type_id": 0]]
            json["post_processor"] =
                [
                    "type": "TemplateProcessing",
                    "single": [item, ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [
                        item, ["Sequence": ["id": "A", "type_id": 0]], item, ["Sequence": ["id": "B", "type_id": 1]],
                    ],
                    "special_tokens": [text: ["id": text, "ids": [Int(bos)], "tokens": [text]]],
                ] as [String: Any]
        }
        json["added_tokens"] = specials.values.sorted().map { id in
            [
                "id": Int(id), "content": tokens[Int(id)], "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": true,
            ] as [String: Any]
        }
        try HFDirectory.write(json, to: dir + "/tokenizer.json")
        var config: [String: Any] = [
            "tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": tokenizer.bos != nil,
            "model_max_length": loaded.model.config.maxSequenceLength,
        ]
        if let bos = tokenizer.bos {
            config["bos_token"] = tokens[Int(bos)]
        } else if !loaded.templateTokens.bos.isEmpty {
            config["bos_token"] = loaded.templateTokens.bos
        }
        if let eos = tokenizer.stopTokens.sorted().first { config["eos_token"] = tokens[Int(eos)] }
        if let template = loaded.chatTemplateSource { config["chat_template"] = template }
        try HFDirectory.write(config, to: dir + "/tokenizer_config.json")
        return []
    }

    /// normalizer, pre_tokenizer, decoder and model settings of a SentencePiece-style BPE (Llama 2's layout).
    private static func sentencePieceParts(prependsSpace: Bool) -> [String: Any] {
        let replace: [String: Any] = ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
        var decoders: [[String: Any]] = [
            ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "],
            ["type": "ByteFallback"], ["type": "Fuse"],
        ]
        if prependsSpace { decoders.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
        return [
            "normalizer": [
                "type": "Sequence",
                "normalizers": (prependsSpace ? [["type": "Prepend", "prepend": "\u{2581}"]] : []) + [replace],
            ],
            "pre_tokenizer": NSNull(), "decoder": ["type": "Sequence", "decoders": decoders],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": true,
            ] as [String: Any],
        ]
    }

    /// normalizer, pre_tokenizer, decoder and model settings of a byte-level BPE.
    private static func byteLevelParts(_ t: ByteLevelBPETokenizer) -> [String: Any] {
        let byteLevel: [String: Any] = [
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true,
        ]
        var pre: [String: Any] =
            t.isolatesDigits
            ? ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
            : byteLevel
        if t.splitPattern == .llama3 {
            var plain = byteLevel
            plain["use_regex"] = false
            pre = [
                "type": "Sequence",
                "pretokenizers": [
                    [
                        "type": "Split", "pattern": ["Regex": SplitPattern.llama3Regex], "behavior": "Isolated",
                        "invert": false,
                    ], plain,
                ],
            ]
        }
        return [
            "normalizer": NSNull(), "pre_tokenizer": pre, "decoder": byteLevel,
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false,
            ] as [String: Any],
        ]
    }
}
