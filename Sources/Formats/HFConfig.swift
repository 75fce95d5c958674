import Foundation
import Llama

/// Hugging Face `config.json` ↔ ``LlamaConfig`` for the Llama architecture under its names.
public enum HFConfig {
    public static let architectures = [
        "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM",
        "GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM",
    ]

    /// Reads a parsed config.json; anything LeanTune's Llama cannot represent is refused by name.
    public static func parse(_ j: [String: Any], file: String) throws -> LlamaConfig {
        func fail(_ problem: String, _ fix: String) -> FormatError {
            FormatError(file: file, problem: problem, fix: fix)
        }
        let arch = (j["architectures"] as? [String])?.first ?? "(none)"
        guard architectures.contains(arch) else {
            if arch == "Gemma3ForConditionalGeneration" {
                throw fail(
                    "architecture '\(arch)' (Gemma 3 with its vision tower) is not supported",
                    "LeanTune fine-tunes the text-only Gemma3ForCausalLM checkpoints (gemma-3-270m, gemma-3-1b).")
            }
            throw fail(
                "architecture '\(arch)' is not supported",
                """
                Supported: \(architectures.joined(separator: ", ")) (Llama 2/3/3.2, TinyLlama, SmolLM, Mistral, \
                Qwen2/2.5, Qwen3, Phi-3/3.5, Gemma 1/2/3).
                """
            )
        }
        func int(_ key: String) throws -> Int {
            guard let v = JSONNumber.integer(j[key]) else {
                throw fail(
                    "key '\(key)' is missing or not an integer (got \(j[key].map { "\($0)" } ?? "nothing"))",
                    "Set it to a whole number in config.json.")
            }
            return v
        }
        func double(_ key: String, default d: Double) -> Double {
            (j[key] as? Double) ?? (j[key] as? Int).map(Double.init) ?? d
        }
        // Qwen2 and Qwen3 configs carry a sliding_window that applies only with use_sliding_window, in the layers
        // that layer_types marks "sliding_attention" (transformers 5) or from max_window_layers on (before).
        let qwen2 = arch == "Qwen2ForCausalLM", qwen3 = arch == "Qwen3ForCausalLM", qwen = qwen2 || qwen3
        // Gemma 2 and 3 interleave sliding and global layers: every other one, or five in six, unless layer_types says
        let gemmaGeneration = ["GemmaForCausalLM": 1, "Gemma2ForCausalLM": 2, "Gemma3ForCausalLM": 3][arch]
        let slidingPattern =
            gemmaGeneration == 2 ? 2 : gemmaGeneration == 3 ? JSONNumber.integer(j["sliding_window_pattern"]) ?? 6 : nil
        var window: Int?, slidingLayers: [Bool]?
        if let w = JSONNumber.integer(j["sliding_window"]), !qwen || (j["use_sliding_window"] as? Bool) == true {
            guard w > 0 else {
                throw fail("sliding_window is \(w)", "It must be a positive number of tokens, or null.")
            }
            window = w
            let layerCount = JSONNumber.integer(j["num_hidden_layers"]) ?? 0
            if let types = j["layer_types"] as? [String] {
                slidingLayers = types.map { $0 == "sliding_attention" }
            } else if qwen, let first = JSONNumber.integer(j["max_window_layers"]) {
                slidingLayers = (0..<max(0, layerCount)).map { $0 >= first }
            } else if let pattern = slidingPattern {
                guard pattern > 0 else {
                    throw fail("sliding_window_pattern is \(pattern)", "It must be a positive number of layers.")
                }
                slidingLayers = LlamaConfig.interleavedSlidingLayers(count: layerCount, pattern: pattern)
            }
        }
        if gemmaGeneration == 1 { (window, slidingLayers) = (nil, nil) }  // Gemma 1 has none
        if (j["use_bidirectional_attention"] as? Bool) == true {
            throw fail("use_bidirectional_attention is true", "Only causal language models are supported.")
        }
        // Phi-3 stacks its projections (split on load); a partial rotary factor (Phi-4-mini) is not supported.
        let phi3 = arch == "Phi3ForCausalLM"
        let rotary = (j["rope_parameters"] as? [String: Any])?["partial_rotary_factor"] ?? j["partial_rotary_factor"]
        if let f = rotary as? Double, f != 1 {
            throw fail(
                "partial_rotary_factor is \(f)", "Only RoPE over whole heads (partial_rotary_factor 1) is supported.")
        }
        // Gemma's MLP reads hidden_activation (a Gemma 1 config's hidden_act "gelu" is overridden by it)
        if gemmaGeneration != nil {
            let act = j["hidden_activation"] as? String ?? "gelu_pytorch_tanh"
            if act != "gelu_pytorch_tanh" {
                throw fail(
                    "hidden_activation '\(act)' is not supported", "Gemma models gate with gelu_pytorch_tanh (GeGLU).")
            }
        } else if let act = j["hidden_act"] as? String, act != "silu" {
            throw fail("hidden_act '\(act)' is not supported", "Only SwiGLU with silu is supported.")
        }
        for key in ["attention_bias", "mlp_bias"] where (j[key] as? Bool) == true {
            throw fail("'\(key)' is true", "Projections with biases are not supported.")
        }
        // transformers 5 writes rope_theta and the scaling together as rope_parameters; Gemma 3's has one set for the
        // global layers (full_attention) and one for the sliding layers (sliding_attention, a base only).
        let allParameters = j["rope_parameters"] as? [String: Any] ?? [:]
        let parameters = allParameters["full_attention"] as? [String: Any] ?? allParameters
        let local = allParameters["sliding_attention"] as? [String: Any]
        if let type = local?["rope_type"] as? String, type != "default" {
            throw fail(
                "rope_parameters.sliding_attention has rope_type '\(type)'",
                "Only unscaled RoPE in the sliding layers is supported.")
        }
        let gemma = try gemmaTraits(gemmaGeneration, j, localTheta: local?["rope_theta"], fail)
        let dim = try int("hidden_size"), heads = try int("num_attention_heads")
        // head_dim may differ from hidden_size / heads (Qwen3, Mistral-Nemo); kept only where it does
        let headDim = j["head_dim"] == nil || j["head_dim"] is NSNull ? nil : try int("head_dim")
        let explicitHeadDim = headDim.flatMap { $0.multipliedReportingOverflow(by: heads) == (dim, false) ? nil : $0 }
        let config = LlamaConfig(
            dim: dim, ffnDim: try int("intermediate_size"), layerCount: try int("num_hidden_layers"), headCount: heads,
            kvHeadCount: j["num_key_value_heads"] == nil ? heads : try int("num_key_value_heads"),
            vocabSize: try int("vocab_size"),
            maxSequenceLength: j["max_position_embeddings"] == nil ? 2048 : try int("max_position_embeddings"),
            normEpsilon: Float(double("rms_norm_eps", default: 1e-6)),
            ropeTheta: Float(
                (parameters["rope_theta"] as? Double)
                    ?? double("rope_theta", default: gemmaGeneration == 3 ? 1_000_000 : 10000)),
            ropeLayout: .rotateHalf, ropeScaling: try scaling(j["rope_scaling"] ?? parameters, j, fail),
            tiedEmbeddings: (j["tie_word_embeddings"] as? Bool) ?? (gemmaGeneration != nil), attentionBias: qwen2,
            slidingWindow: window, slidingLayers: slidingLayers, explicitHeadDim: explicitHeadDim,
            queryKeyNorm: qwen3 || gemmaGeneration == 3, fusedProjections: phi3, gemma: gemma)
        do { try config.validate() } catch let e as LlamaError { throw fail(e.description, "Fix config.json.") }
        return config
    }

    /// Gemma's traits for its generation (1, 2, 3; nil: not Gemma), with transformers' defaults for absent keys.
    private static func gemmaTraits(
        _ generation: Int?, _ j: [String: Any], localTheta: Any?, _ fail: (String, String) -> FormatError
    ) throws -> LlamaConfig.GemmaTraits {
        guard let generation else { return .init() }
        /// A positive number, the default when the key is absent, nil when it is null.
        func positive(_ value: Any?, _ key: String, default d: Double?) throws -> Float? {
            if value == nil { return d.map(Float.init) }
            if value is NSNull { return nil }
            guard let v = value as? Double, !JSONNumber.isBoolean(value), v > 0, v.isFinite else {
                throw fail("\(key) must be a positive number or null", "Fix it in config.json.")
            }
            return Float(v)
        }
        var traits = LlamaConfig.GemmaTraits(normsScaleFromOne: true, geluGate: true, scalesEmbedding: true)
        guard generation >= 2 else { return traits }
        traits.outputNorms = true
        traits.queryPreAttentionScalar = try positive(j["query_pre_attn_scalar"], "query_pre_attn_scalar", default: 256)
        let caps: (Double?, Double?) = generation == 2 ? (50, 30) : (nil, nil)
        traits.attentionSoftcap = try positive(j["attn_logit_softcapping"], "attn_logit_softcapping", default: caps.0)
        traits.logitSoftcap = try positive(j["final_logit_softcapping"], "final_logit_softcapping", default: caps.1)
        if generation == 3 {
            traits.localRopeTheta = try positive(
                localTheta ?? j["rope_local_base_freq"], "rope_local_base_freq", default: 10000)
        }
        return traits
    }

    /// rope_scaling (or transformers 5's rope_parameters) read as transformers' rope initialisation reads it;
    /// `j` is the whole config, whose max_position_embeddings and (Phi-3) original_max_position_embeddings count.
    private static func scaling(
        _ value: Any?, _ j: [String: Any], _ fail: (String, String) -> FormatError
    ) throws -> RoPEScaling? {
        guard let s = value as? [String: Any] else { return nil }
        let type = (s["rope_type"] as? String) ?? (s["type"] as? String) ?? "default"
        func number(_ key: String, default d: Double? = nil) throws -> Double {
            // every rope_scaling number is a positive factor or length
            if s[key] == nil || s[key] is NSNull, let d { return d }
            guard let v = s[key] as? Double, !JSONNumber.isBoolean(s[key]) else {
                throw fail("rope_scaling.\(key) is missing or not a number", "Complete rope_scaling in config.json.")
            }
            guard v > 0, v.isFinite else { throw fail("rope_scaling.\(key) is \(v)", "It must be a positive number.") }
            return v
        }
        func length(_ value: Any?, _ key: String) throws -> Int {
            guard let n = JSONNumber.integer(value), n > 0, n <= LlamaConfig.sequenceLimit else {
                throw fail(
                    "\(key) must be a whole number in 1...\(LlamaConfig.sequenceLimit)",
                    "Fix rope_scaling in config.json.")
            }
            return n
        }
        func factors(_ key: String) throws -> [Double] {
            guard let list = s[key] as? [Any], let values = list.map({ $0 as? Double }) as? [Double],
                values.allSatisfy({ $0 > 0 && $0.isFinite })
            else {
                throw fail("rope_scaling.\(key) is not a list of positive numbers", "Fix rope_scaling in config.json.")
            }
            return values
        }
        let context =
            j["max_position_embeddings"] == nil
            ? 2048 : try length(j["max_position_embeddings"], "max_position_embeddings")
        // the pre-training context (yarn, longrope): Phi-3 keeps it beside rope_scaling, others inside; else the
        // model's context. A null counts as absent.
        func originalContext() throws -> Int {
            let given = [j["original_max_position_embeddings"], s["original_max_position_embeddings"]].first {
                $0 != nil && !($0 is NSNull)
            }
            return try length((given ?? nil) ?? context, "original_max_position_embeddings")
        }
        switch type {
        case "default": return nil
        case "linear": return .linear(factor: try number("factor"))
        case "llama3":
            return .llama3(
                factor: try number("factor"), lowFrequencyFactor: try number("low_freq_factor"),
                highFrequencyFactor: try number("high_freq_factor"),
                originalContextLength: try length(
                    s["original_max_position_embeddings"], "rope_scaling.original_max_position_embeddings"))
        case "dynamic": return .dynamic(factor: try number("factor"), contextLength: context)
        case "yarn":
            let original = try originalContext()
            let factor = try number("factor", default: Double(context) / Double(original))
            // mscale and mscale_all_dim count only together
            let both = s["mscale"] != nil && s["mscale_all_dim"] != nil
            let attention = try number(
                "attention_factor",
                default: RoPEScaling.yarnAttentionFactor(
                    factor: factor, mscales: both ? (try number("mscale"), try number("mscale_all_dim")) : nil))
            return .yarn(
                factor: factor, originalContextLength: original, betaFast: try number("beta_fast", default: 32),
                betaSlow: try number("beta_slow", default: 1), truncate: (s["truncate"] as? Bool) ?? true,
                attentionFactor: attention)
        case "longrope", "su":
            let original = try originalContext()
            let factor = try number("factor", default: Double(context) / Double(original))
            let attention = try number(
                "attention_factor",
                default: RoPEScaling.longRoPEAttentionFactor(factor: factor, originalContextLength: original))
            return .longRoPE(
                shortFactors: try factors("short_factor"), longFactors: try factors("long_factor"),
                originalContextLength: original, attentionFactor: attention)
        default:
            throw fail(
                "rope_scaling type '\(type)' is not supported", "Supported: linear, llama3, dynamic, yarn, longrope.")
        }
    }

    /// The transformers class and model_type that hold `c`: Gemma 3, 2 or 1 for Gemma's traits (by q/k norms, output
    /// norms); Phi-3 for stacked projections; Qwen3 for query and key norms; Qwen2 for biases; Mistral for a sliding
    /// window without them (Llama has no window); else Llama.
    public static func architecture(_ c: LlamaConfig) -> (name: String, modelType: String) {
        switch c.gemmaGeneration {
        case 1: return ("GemmaForCausalLM", "gemma")
        case 2: return ("Gemma2ForCausalLM", "gemma2")
        case 3: return ("Gemma3ForCausalLM", "gemma3_text")
        default: break
        }
        return c.fusedProjections
            ? ("Phi3ForCausalLM", "phi3")
            : c.queryKeyNorm
                ? ("Qwen3ForCausalLM", "qwen3")
                : c.attentionBias
                    ? ("Qwen2ForCausalLM", "qwen2")
                    : c.slidingWindow != nil ? ("MistralForCausalLM", "mistral") : ("LlamaForCausalLM", "llama")
    }

    /// config.json for `c` (always rotate-half RoPE: export permutes GGUF/llama2.c query and key rows).
    public static func json(_ c: LlamaConfig, bos: Int32?, eos: Int32?) -> [String: Any] {
        let g = c.gemma, (architecture, modelType) = Self.architecture(c)
        var j: [String: Any] = [
            "architectures": [architecture], "model_type": modelType, "hidden_act": "silu",
            "hidden_size": c.dim, "intermediate_size": c.ffnDim, "num_hidden_layers": c.layerCount,
            "num_attention_heads": c.headCount, "num_key_value_heads": c.kvHeadCount, "vocab_size": c.vocabSize,
            "max_position_embeddings": c.maxSequenceLength, "rms_norm_eps": Double("\(c.normEpsilon)")!,
            "rope_theta": Double("\(c.ropeTheta)")!, "tie_word_embeddings": c.tiedEmbeddings, "torch_dtype": "float32",
        ]
        if modelType == "llama" { (j["attention_bias"], j["mlp_bias"]) = (false, false) }
        if modelType == "qwen3" { j["attention_bias"] = false }
        // transformers' Phi-3 defaults pad_token_id to 32000, outside small vocabularies; LeanTune keeps no padding id
        if modelType == "phi3" { j["pad_token_id"] = NSNull() }
        if let e = c.explicitHeadDim { j["head_dim"] = e }
        if modelType.hasPrefix("gemma") {
            // Gemma's defaults differ from LeanTune's (head_dim 256, soft-capping on): every value is written
            (j["head_dim"], j["hidden_activation"], j["attention_bias"]) = (c.headDim, "gelu_pytorch_tanh", false)
            j["hidden_act"] = nil
            func number(_ x: Float?) -> Any { x.map { Double("\($0)")! } ?? NSNull() }
            if g.outputNorms {
                // an int in transformers' typed configuration (256, 144 in the published ones)
                let scalar = g.queryPreAttentionScalar ?? Float(c.headDim)
                j["query_pre_attn_scalar"] =
                    scalar == scalar.rounded() && scalar < 1e9 ? Int(scalar) as Any : number(scalar)
                j["attn_logit_softcapping"] = number(g.attentionSoftcap)
                j["final_logit_softcapping"] = number(g.logitSoftcap)
                j["sliding_window"] = NSNull()
            }
            if modelType == "gemma3_text" {
                // the legacy keys, which transformers 4 and 5 both read (5 converts them into rope_parameters)
                j["rope_local_base_freq"] = number(g.localRopeTheta ?? c.ropeTheta)
            }
        }
        if let w = c.slidingWindow {
            j["sliding_window"] = w
            if modelType.hasPrefix("qwen") { j["use_sliding_window"] = true }
            // Gemma's absent layer_types would mean its interleaving, not a window in every layer
            if let layers = c.slidingLayers
                ?? (modelType.hasPrefix("gemma") ? Array(repeating: true, count: c.layerCount) : nil)
            {
                j["layer_types"] = layers.map { $0 ? "sliding_attention" : "full_attention" }
            }
        }
        if let bos { j["bos_token_id"] = Int(bos) }
        if let eos { j["eos_token_id"] = Int(eos) }
        switch c.ropeScaling {
        case nil: break
        case .linear(let factor): j["rope_scaling"] = ["rope_type": "linear", "factor": factor]
        case .llama3(let factor, let low, let high, let original):
            j["rope_scaling"] = [
                "rope_type": "llama3", "factor": factor, "low_freq_factor": low, "high_freq_factor": high,
                "original_max_position_embeddings": original,
            ]
        case .dynamic(let factor, _): j["rope_scaling"] = ["rope_type": "dynamic", "factor": factor]
        // attention_factor is written only where it is not the one the other keys imply: JSON parsing on Linux may
        // not read a Double back to the same bits, and the implied one is recomputed exactly
        case .yarn(let factor, let original, let fast, let slow, let truncate, let attention):
            var scaling: [String: Any] = [
                "rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original, "beta_fast": fast,
                "beta_slow": slow, "truncate": truncate,
            ]
            if attention != RoPEScaling.yarnAttentionFactor(factor: factor) { scaling["attention_factor"] = attention }
            j["rope_scaling"] = scaling
        case .longRoPE(let short, let long, let original, let attention):
            var scaling: [String: Any] = [
                "rope_type": "longrope", "short_factor": short, "long_factor": long,
                "original_max_position_embeddings": original,
            ]
            let implied = RoPEScaling.longRoPEAttentionFactor(
                factor: Double(c.maxSequenceLength) / Double(original), originalContextLength: original)
            if attention != implied { scaling["attention_factor"] = attention }
            j["rope_scaling"] = scaling
            j["original_max_position_embeddings"] = original  // where Phi-3's configuration reads it
        case .frequencyFactors(let factors):
            // transformers' longrope with one set of factors over the whole context divides frequencies alike
            j["rope_scaling"] = [
                "rope_type": "longrope", "short_factor": factors, "long_factor": factors,
                "original_max_position_embeddings": c.maxSequenceLength,
            ]
        }
        return j
    }
}
