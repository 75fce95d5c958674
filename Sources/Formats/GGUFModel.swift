import Llama
import TensorCore

/// Reads a `llama`-, `qwen2`-, `qwen3`-, `phi3`-, `gemma`-, `gemma2`- or `gemma3`-architecture GGUF file into an fp32
/// model. For llama, llama.cpp's converter permutes the query and key rows so that RoPE rotates adjacent pairs; the
/// others keep Hugging Face's rotate-half order, qwen2 has q/k/v biases, qwen3 per-head query and key norms, phi3
/// stacked projections (split on load), and Gemma's settings are those llama.cpp fixes (``GGUFGemma``). The model is
/// configured accordingly.
public enum GGUFModel {
    public static let supportedArchitectures = ["llama", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3"]

    /// The configuration described by the file's metadata.
    public static func config(_ gguf: GGUFFile) throws -> LlamaConfig {
        let m = gguf.metadata
        let arch = m["general.architecture"]?.string ?? "(none)"
        guard supportedArchitectures.contains(arch) else {
            throw FormatError(
                file: gguf.path, problem: "architecture '\(arch)' is not supported",
                fix: "Supported GGUF architectures: \(supportedArchitectures.joined(separator: ", ")).")
        }
        func int(_ key: String) throws -> Int {
            guard let v = m["\(arch).\(key)"]?.int else {
                throw FormatError(
                    file: gguf.path, problem: "metadata '\(arch).\(key)' is missing",
                    fix: "The file is incomplete; convert it again.")
            }
            return v
        }
        let heads = try int("attention.head_count"), dim = try int("embedding_length")
        // the head dimension, where the file sets it apart from embedding_length / head_count
        let keyLength = m["\(arch).attention.key_length"]?.int.flatMap { heads > 0 && $0 * heads != dim ? $0 : nil }
        let vocab =
            m["\(arch).vocab_size"]?.int ?? m["tokenizer.ggml.tokens"]?.array?.count
            ?? gguf.tensors["token_embd.weight"]?.dims.last ?? 0
        var gemma = LlamaConfig.GemmaTraits()
        var (window, slidingLayers): (Int?, [Bool]?) = (nil, nil)
        if arch.hasPrefix("gemma") {
            gemma = .init(normsScaleFromOne: true, geluGate: true, scalesEmbedding: true)
            if arch != "gemma" {
                let layers = try int("block_count")
                gemma.outputNorms = true
                gemma.queryPreAttentionScalar = GGUFGemma.queryPreAttentionScalar(
                    arch, dim: dim, heads: heads, headDim: keyLength ?? dim / max(1, heads), layers: layers)
                // llama.cpp's gemma2 defaults (4096, 50, 30) where the file has none
                window = m["\(arch).attention.sliding_window"]?.int ?? (arch == "gemma2" ? 4096 : nil)
                slidingLayers = GGUFGemma.slidingLayers(arch, count: min(layers, 1 << 10))
                if arch == "gemma2" {
                    gemma.attentionSoftcap = Float(m["gemma2.attn_logit_softcapping"]?.double ?? 50)
                    gemma.logitSoftcap = Float(m["gemma2.final_logit_softcapping"]?.double ?? 30)
                } else {
                    gemma.localRopeTheta = GGUFGemma.localRopeTheta
                }
            }
        }
        var config = LlamaConfig(
            dim: dim, ffnDim: try int("feed_forward_length"),
            layerCount: try int("block_count"),
            headCount: heads, kvHeadCount: m["\(arch).attention.head_count_kv"]?.int ?? heads, vocabSize: vocab,
            maxSequenceLength: try int("context_length"),
            normEpsilon: Float(m["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: Float(m["\(arch).rope.freq_base"]?.double ?? 10000),
            ropeLayout: arch == "llama" ? .adjacentPairs : .rotateHalf,
            tiedEmbeddings: gguf.tensors["output.weight"] == nil,
            attentionBias: arch == "qwen2", slidingWindow: window, slidingLayers: slidingLayers,
            explicitHeadDim: keyLength, queryKeyNorm: arch == "qwen3" || arch == "gemma3",
            fusedProjections: arch == "phi3",
            gemma: gemma)
        do {
            try config.validate()  // before the head dimension is used
            config.ropeScaling = try ropeScaling(
                gguf, arch: arch, theta: Double(config.ropeTheta), headDim: config.headDim)
            try config.validate()
        } catch let e as LlamaError {
            throw FormatError(file: gguf.path, problem: e.description, fix: "The metadata is inconsistent.")
        }
        return config
    }

    /// The name llama.cpp gives the per-pair frequency factors (Llama 3's scaling as its converter writes it).
    static let frequencyFactorsTensor = "rope_freqs.weight"

    /// The RoPE scaling of the file: linear from `rope.scaling.type` and `.factor`, per-pair factors from
    /// `rope_freqs.weight` (read back as Llama 3's scaling where they are exactly its published settings'); other
    /// types are refused rather than ignored.
    static func ropeScaling(_ gguf: GGUFFile, arch: String, theta: Double, headDim: Int) throws -> RoPEScaling? {
        let m = gguf.metadata, type = m["\(arch).rope.scaling.type"]?.string ?? "none"
        func refuse(_ problem: String) -> FormatError {
            FormatError(
                file: gguf.path, problem: problem,
                fix: "Load the model's Hugging Face directory instead; it carries the scaling in config.json.")
        }
        func factors(_ t: GGUFTensor) throws -> [Double] {
            guard t.dims == [headDim / 2] else {
                throw refuse("\(t.name) has dims \(t.dims); it needs [\(headDim / 2)]")
            }
            var floats = [Float](repeating: 0, count: headDim / 2)
            floats.withUnsafeMutableBufferPointer { gguf.read(t, into: $0.baseAddress!) }
            guard floats.allSatisfy({ $0 > 0 && $0.isFinite }) else {
                throw refuse("\(t.name) holds a factor that is not a positive number")
            }
            return floats.map(Double.init)
        }
        func positive(_ key: String, default d: Double? = nil) throws -> Double {
            guard let v = m["\(arch).rope.scaling.\(key)"]?.double ?? d, v > 0, v.isFinite else {
                throw refuse("rope.scaling.\(key) is missing or not a positive number")
            }
            return v
        }
        func original() throws -> Int {
            guard let n = m["\(arch).rope.scaling.original_context_length"]?.int, n > 0, n <= LlamaConfig.sequenceLimit
            else { throw refuse("rope.scaling.original_context_length is missing or out of range") }
            return n
        }
        if let short = gguf.tensors[ropeFactorsShort], let long = gguf.tensors[ropeFactorsLong] {  // Phi-3's LongRoPE
            return .longRoPE(
                shortFactors: try factors(short), longFactors: try factors(long), originalContextLength: try original(),
                attentionFactor: try positive("attn_factor", default: 1))
        }
        guard let t = gguf.tensors[frequencyFactorsTensor] else {
            switch type {
            case "none": return nil
            case "yarn":
                let factor = try positive("factor")
                return .yarn(
                    factor: factor, originalContextLength: try original(),
                    betaFast: try positive("yarn_beta_fast", default: 32),
                    betaSlow: try positive("yarn_beta_slow", default: 1),
                    truncate: true, attentionFactor: RoPEScaling.yarnAttentionFactor(factor: factor))
            case "linear":
                guard let f = m["\(arch).rope.scaling.factor"]?.double, f > 0, f.isFinite else {
                    throw refuse("rope.scaling.factor is missing or not a positive number")
                }
                return .linear(factor: f)
            default: throw refuse("RoPE scaling '\(type)' in GGUF files is not read yet")
            }
        }
        guard type == "none" else { throw refuse("\(frequencyFactorsTensor) beside scaling '\(type)'") }
        let factors = try factors(t)
        let llama3 = RoPEScaling.llama3(
            factor: factors.max() ?? 1, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 8192)
        let same = zip(frequencyFactors(llama3, theta: theta, headDim: headDim), factors).allSatisfy {
            abs($0 - $1) <= 1e-6 * $1
        }
        return same ? llama3 : .frequencyFactors(factors)
    }

    /// Base over scaled frequency for each pair: what `rope_freqs.weight` holds for `scaling`.
    static func frequencyFactors(_ scaling: RoPEScaling, theta: Double, headDim e: Int) -> [Double] {
        zip(
            RoPE.frequencies(theta: theta, headDim: e),
            scaling.frequencies(theta: theta, headDim: e, positions: 1).inverse
        )
        .map { $0 / $1 }
    }

    /// Phi-3's LongRoPE factors, as llama.cpp names them.
    static let ropeFactorsShort = "rope_factors_short.weight", ropeFactorsLong = "rope_factors_long.weight"

    /// The GGUF name of a stacked Phi-3 tensor: q, k, v as `attn_qkv`, gate and up as `ffn_up`.
    static func stackedTensorName(_ group: FusedProjections.Group, _ layout: ParameterLayout) -> String {
        let first = layout.parameters[group.parts[0]]
        return "blk.\(first.layer ?? 0)." + (first.role == .query ? "attn_qkv" : "ffn_up") + ".weight"
    }

    /// The GGUF name of each parameter of `layout`.
    static func tensorName(_ info: ParameterInfo) -> String {
        let block = info.layer.map { "blk.\($0)." } ?? ""
        let name =
            switch info.role {
            case .embedding: "token_embd"
            case .attentionNorm: "attn_norm"
            case .query: "attn_q"
            case .key: "attn_k"
            case .value: "attn_v"
            case .output: "attn_output"
            case .ffnNorm: "ffn_norm"
            case .gate: "ffn_gate"
            case .up: "ffn_up"
            case .down: "ffn_down"
            case .finalNorm: "output_norm"
            case .head: "output"
            case .queryBias: "attn_q"
            case .keyBias: "attn_k"
            case .valueBias: "attn_v"
            case .queryNorm: "attn_q_norm"
            case .keyNorm: "attn_k_norm"
            case .attentionOutputNorm: "post_attention_norm"
            case .ffnOutputNorm: "post_ffw_norm"
            }
        return block + name + (info.role.kind == .bias ? ".bias" : ".weight")
    }

    /// Dequantizes every tensor into an fp32 store.
    public static func load(
        _ gguf: GGUFFile, ledger: MemoryLedger = .shared
    ) throws -> (LlamaConfig, FP32ParameterStore) {
        let config = try config(gguf)
        let layout = ParameterLayout(config)
        let store = FP32ParameterStore(layout: layout, ledger: ledger)
        func tensor(_ name: String, shape: [Int]) throws -> GGUFTensor {
            guard let t = gguf.tensors[name] else {
                throw FormatError(
                    file: gguf.path, problem: "tensor '\(name)' is missing",
                    fix: "The file is incomplete; convert it again.")
            }
            guard Array(t.dims.reversed()) == shape else {
                throw FormatError(
                    file: gguf.path,
                    problem:
                        """
                        tensor '\(name)' has ggml dims \(t.dims); the configuration needs \(Array(shape.reversed()))
                        """,
                    fix: "The metadata and the tensors disagree; convert the model again.")
            }
            return t
        }
        // Phi-3's stacked tensors: read whole, then split by rows
        let stacked = FusedProjections.places(layout, config)
        for group in FusedProjections.groups(layout, config) {
            let t = try tensor(stackedTensorName(group, layout), shape: group.shape)
            let all = AlignedBuffer<Float>(count: group.shape[0] * group.shape[1], category: .workspace, ledger: ledger)
            gguf.read(t, into: all.pointer)
            var at = 0
            for id in group.parts {
                let part = store.view(id)
                part.baseAddress!.update(from: all.pointer + at, count: part.count)
                at += part.count
            }
        }
        for (id, info) in layout.parameters.enumerated() where stacked[id] == nil {
            let values = store.view(id)
            gguf.read(try tensor(tensorName(info), shape: info.shape), into: values.baseAddress!)
            if info.role.kind == .scale, config.normOffset != 0 {  // the converter stored 1 + w
                for i in values.indices { values[i] -= config.normOffset }
            }
        }
        return (config, store)
    }
}
