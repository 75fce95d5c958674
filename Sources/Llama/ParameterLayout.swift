import TensorCore

/// Index of one parameter tensor in a ``ParameterLayout``.
public typealias ParameterID = Int

/// The form of a parameter, which decides how it is initialised, quantized and projected.
public enum ParameterKind: String, Sendable, Codable {
    /// A 2-D weight: a projection, the embedding or the head (initialised N(0, σ²)).
    case matrix
    /// A 1-D multiplicative scale, e.g. an RMSNorm weight (initialised to ones).
    case scale
    /// A 1-D additive bias (initialised to zeros), e.g. Qwen2's query, key and value biases.
    case bias
}

/// What a parameter is; methods choose treatment by role (e.g. no weight decay on norms).
public enum ParameterRole: String, Sendable, Codable {
    case embedding, attentionNorm, query, key, value, output, ffnNorm, gate, up, down, finalNorm, head
    /// The biases of the query, key and value projections (Qwen2).
    case queryBias, keyBias, valueBias
    /// The per-head RMSNorm scales of queries and keys (Qwen3, Gemma 3).
    case queryNorm, keyNorm
    /// The norms of attention's and the MLP's outputs, before the residual add (Gemma 2 and 3).
    case attentionOutputNorm, ffnOutputNorm

    public var kind: ParameterKind {
        switch self {
        case .attentionNorm, .ffnNorm, .finalNorm, .queryNorm, .keyNorm, .attentionOutputNorm, .ffnOutputNorm: .scale
        case .embedding, .query, .key, .value, .output, .gate, .up, .down, .head: .matrix
        case .queryBias, .keyBias, .valueBias: .bias
        }
    }

    /// A decoder block's linear map (q, k, v, o, gate, up, down): what GaLore, AdaRankGrad and LSP-Offload project
    /// and DiZO's all-linear set perturbs; the embedding and head are matrices but not block matrices.
    public var isBlockMatrix: Bool {
        switch self {
        case .query, .key, .value, .output, .gate, .up, .down: true
        case .embedding, .head, .attentionNorm, .ffnNorm, .finalNorm, .queryBias, .keyBias, .valueBias, .queryNorm,
            .keyNorm, .attentionOutputNorm, .ffnOutputNorm:
            false
        }
    }

}

/// Name, shape and place of one parameter in the slab.
public struct ParameterInfo: Sendable, Equatable {
    /// Hugging Face name, e.g. `model.layers.3.self_attn.q_proj.weight`.
    public let name: String
    /// [rows, cols] for matrices (rows = out features), [n] for vectors.
    public let shape: [Int]
    /// Offset in floats from the slab start (a multiple of 16, i.e. 64 bytes).
    public let offset: Int
    public let role: ParameterRole
    /// The decoder layer, or nil for embedding, final norm and head.
    public let layer: Int?
    /// The value every entry starts from when not drawn at random (nil for matrices): 0 for biases; for scales 1, or
    /// 0 where the norm scales by 1 + w (Gemma).
    public let constantInitialValue: Float?

    public var count: Int { shape.reduce(1, *) }
}

/// The ids of one decoder layer's parameters.
public struct LayerParameterIDs: Sendable, Equatable {
    public let attentionNorm, query, key, value, output, ffnNorm, gate, up, down: ParameterID
    /// The projections' biases, where the configuration has them.
    public let queryBias, keyBias, valueBias: ParameterID?
    /// The per-head query and key norms, where the configuration has them.
    public let queryNorm, keyNorm: ParameterID?
    /// The norms of attention's and the MLP's outputs, where the configuration has them.
    public let attentionOutputNorm, ffnOutputNorm: ParameterID?

    /// In the order backward finishes them.
    public var all: [ParameterID] {
        [ffnOutputNorm].compactMap { $0 } + [down, up, gate, ffnNorm] + [attentionOutputNorm].compactMap { $0 }
            + [output] + [keyNorm, queryNorm].compactMap { $0 } + [value]
            + [valueBias].compactMap { $0 } + [key] + [keyBias].compactMap { $0 } + [query]
            + [queryBias].compactMap { $0 } + [attentionNorm]
    }
}

/// Every parameter of a Llama model laid out in one slab, with named per-layer views.
public struct ParameterLayout: Sendable, Equatable {
    public let parameters: [ParameterInfo]
    public let embedding: ParameterID
    public let layers: [LayerParameterIDs]
    public let finalNorm: ParameterID
    /// The LM head; equal to ``embedding`` when tied.
    public let head: ParameterID
    /// Floats in the slab, including alignment padding.
    public let totalCount: Int

    public init(_ c: LlamaConfig) {
        var params: [ParameterInfo] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int], _ role: ParameterRole, _ layer: Int? = nil) -> ParameterID {
            let initial: Float? =
                switch role.kind {
                case .matrix: nil
                case .scale: 1 - c.normOffset
                case .bias: 0
                }
            params.append(
                ParameterInfo(
                    name: name, shape: shape, offset: offset, role: role, layer: layer, constantInitialValue: initial))
            offset += (shape.reduce(1, *) + 15) / 16 * 16
            return params.count - 1
        }
        embedding = add("model.embed_tokens.weight", [c.vocabSize, c.dim], .embedding)
        var layers: [LayerParameterIDs] = []
        for l in 0..<c.layerCount {
            let p = "model.layers.\(l)."
            let attentionNorm = add(p + "input_layernorm.weight", [c.dim], .attentionNorm, l)
            let query = add(p + "self_attn.q_proj.weight", [c.queryDim, c.dim], .query, l)
            let queryBias = c.attentionBias ? add(p + "self_attn.q_proj.bias", [c.queryDim], .queryBias, l) : nil
            let key = add(p + "self_attn.k_proj.weight", [c.kvDim, c.dim], .key, l)
            let keyBias = c.attentionBias ? add(p + "self_attn.k_proj.bias", [c.kvDim], .keyBias, l) : nil
            let value = add(p + "self_attn.v_proj.weight", [c.kvDim, c.dim], .value, l)
            let valueBias = c.attentionBias ? add(p + "self_attn.v_proj.bias", [c.kvDim], .valueBias, l) : nil
            let output = add(p + "self_attn.o_proj.weight", [c.dim, c.queryDim], .output, l)
            let queryNorm = c.queryKeyNorm ? add(p + "self_attn.q_norm.weight", [c.headDim], .queryNorm, l) : nil
            let keyNorm = c.queryKeyNorm ? add(p + "self_attn.k_norm.weight", [c.headDim], .keyNorm, l) : nil
            // With output norms (Gemma 2, 3) post_attention_layernorm is attention's output norm, and the MLP's input
            // norm is pre_feedforward_layernorm.
            let outputNorms = c.gemma.outputNorms
            let attentionOutputNorm =
                outputNorms ? add(p + "post_attention_layernorm.weight", [c.dim], .attentionOutputNorm, l) : nil
            let ffnNorm = add(
                p + (outputNorms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), [c.dim],
                .ffnNorm, l)
            layers.append(
                LayerParameterIDs(
                    attentionNorm: attentionNorm, query: query, key: key, value: value, output: output,
                    ffnNorm: ffnNorm,
                    gate: add(p + "mlp.gate_proj.weight", [c.ffnDim, c.dim], .gate, l),
                    up: add(p + "mlp.up_proj.weight", [c.ffnDim, c.dim], .up, l),
                    down: add(p + "mlp.down_proj.weight", [c.dim, c.ffnDim], .down, l), queryBias: queryBias,
                    keyBias: keyBias, valueBias: valueBias, queryNorm: queryNorm, keyNorm: keyNorm,
                    attentionOutputNorm: attentionOutputNorm,
                    ffnOutputNorm: outputNorms
                        ? add(p + "post_feedforward_layernorm.weight", [c.dim], .ffnOutputNorm, l) : nil))
        }
        self.layers = layers
        finalNorm = add("model.norm.weight", [c.dim], .finalNorm)
        head = c.tiedEmbeddings ? embedding : add("lm_head.weight", [c.vocabSize, c.dim], .head)
        parameters = params
        totalCount = offset
    }

    /// Number of trainable values (padding excluded).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Parameter `id`'s part of a slab laid out by this layout (weights, gradients, optimizer state).
    public func view(_ id: ParameterID, in slab: AlignedBuffer<Float>) -> UnsafeMutableBufferPointer<Float> {
        slab.slice(parameters[id].offset, parameters[id].count)
    }
}
