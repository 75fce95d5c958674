import Llama
import TensorCore

/// Reads a `llama`-, `qwen2`- or `qwen3`-architecture GGUF file into an fp32 model. For llama, llama.cpp's converter
/// permutes the query and key rows so that RoPE rotates adjacent pairs; qwen2 and qwen3 keep Hugging Face's
/// rotate-half order, qwen2 has q/k/v biases and qwen3 per-head query and key norms. The model is configured
/// accordingly.
public enum GGUFModel {
    public static let supportedArchitectures = ["llama", "qwen2", "qwen3"]

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
        let config = LlamaConfig(
            dim: dim, ffnDim: try int("feed_forward_length"),
            layerCount: try int("block_count"),
            headCount: heads, kvHeadCount: m["\(arch).attention.head_count_kv"]?.int ?? heads, vocabSize: vocab,
            maxSequenceLength: try int("context_length"),
            normEpsilon: Float(m["\(arch).attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: Float(m["\(arch).rope.freq_base"]?.double ?? 10000),
            ropeLayout: arch == "llama" ? .adjacentPairs : .rotateHalf,
            tiedEmbeddings: gguf.tensors["output.weight"] == nil,
            attentionBias: arch == "qwen2", explicitHeadDim: keyLength, queryKeyNorm: arch == "qwen3")
        do { try config.validate() } catch let e as LlamaError {
            throw FormatError(file: gguf.path, problem: e.description, fix: "The metadata is inconsistent.")
        }
        return config
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
        for (id, info) in layout.parameters.enumerated() {
            let name = tensorName(info)
            guard let t = gguf.tensors[name] else {
                throw FormatError(
                    file: gguf.path, problem: "tensor '\(name)' is missing",
                    fix: "The file is incomplete; convert it again.")
            }
            guard Array(t.dims.reversed()) == info.shape else {
                throw FormatError(
                    file: gguf.path,
                    problem:
                        """
                        tensor '\(name)' has ggml dims \(t.dims); the configuration needs \
                        \(Array(info.shape.reversed()))
                        """,
                    fix: "The metadata and the tensors disagree; convert the model again.")
            }
            gguf.read(t, into: store.view(id).baseAddress!)
        }
        return (config, store)
    }
}
