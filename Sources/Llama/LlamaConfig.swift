/// How rotary position embeddings pair up the dimensions of a head.
public enum RoPELayout: String, Sendable, Codable, CaseIterable {
    /// Hugging Face `rotate_half`: dimension i pairs with i + E/2.
    case rotateHalf = "rotate-half"
    /// llama2.c and GGUF: dimensions 2i and 2i+1 form a pair.
    case adjacentPairs = "adjacent-pairs"
}

/// Shape and numerics of a Llama-family decoder.
///
/// Shape letters used across the module: B batch, T tokens, D model dim, H heads, K kv heads,
/// E head dim, F ffn dim, V vocab, L layers, N = B·T rows.
public struct LlamaConfig: Sendable, Codable, Equatable {
    /// D
    public var dim: Int
    /// F
    public var ffnDim: Int
    /// L
    public var layerCount: Int
    /// H
    public var headCount: Int
    /// K (grouped-query attention when K < H)
    public var kvHeadCount: Int
    /// V
    public var vocabSize: Int
    /// The longest sequence the model was trained for.
    public var maxSequenceLength: Int
    public var normEpsilon: Float
    public var ropeTheta: Float
    public var ropeLayout: RoPELayout
    /// Frequency scaling for long contexts, if the checkpoint uses one.
    public var ropeScaling: RoPEScaling?
    /// The LM head reuses the token embedding.
    public var tiedEmbeddings: Bool
    /// The query, key and value projections add a bias (Qwen2, Qwen2.5).
    public var attentionBias: Bool
    /// E when the checkpoint sets it apart from D / H (Qwen3's `head_dim`); nil: E = D / H.
    public var explicitHeadDim: Int?
    /// Each query and key head is RMS-normalised over its E values, with one learned scale of E shared by the
    /// heads, after the projection and before RoPE (Qwen3's q_norm and k_norm).
    public var queryKeyNorm: Bool
    /// The checkpoint stacks q, k and v into one `qkv_proj` and gate and up into one `gate_up_proj` (Phi-3). The
    /// model keeps them apart; loading splits them by rows and export stacks them again.
    public var fusedProjections: Bool
    /// Sliding-window attention (Mistral; Qwen2 with use_sliding_window): each query sees the `slidingWindow` keys
    /// up to its own, in the layers `slidingLayers` marks (every layer when nil).
    public var slidingWindow: Int?
    public var slidingLayers: [Bool]?
    /// Gemma's differences from Llama (none by default).
    public var gemma: GemmaTraits

    /// What Gemma changes in the Llama decoder, each a switch of its own (Gemma 1 sets the first three, Gemma 2 adds
    /// the output norms, the attention scale and the soft-capping, Gemma 3 the sliding layers' RoPE base).
    public struct GemmaTraits: Sendable, Codable, Equatable {
        /// Every RMSNorm (q/k norms included) scales by 1 + w instead of w; its weights start at zero.
        public var normsScaleFromOne = false
        /// The MLP gates with tanh-approximated GELU (GeGLU) instead of SiLU.
        public var geluGate = false
        /// The embedding rows are multiplied by √D on the way in (not on the way out through a tied head).
        public var scalesEmbedding = false
        /// Attention's and the MLP's outputs are RMS-normalised before they join the residual stream.
        public var outputNorms = false
        /// Attention scores are scaled by 1/√(this) instead of 1/√E (query_pre_attn_scalar).
        public var queryPreAttentionScalar: Float?
        /// Attention scores become c·tanh(s/c) before the softmax (attn_logit_softcapping).
        public var attentionSoftcap: Float?
        /// Logits become c·tanh(z/c) (final_logit_softcapping).
        public var logitSoftcap: Float?
        /// The RoPE base of the sliding-window layers, which then turn without the scaling (Gemma 3's
        /// rope_local_base_freq); nil: every layer uses ``LlamaConfig/ropeTheta`` and ``LlamaConfig/ropeScaling``.
        public var localRopeTheta: Float?

        public init(
            normsScaleFromOne: Bool = false, geluGate: Bool = false, scalesEmbedding: Bool = false,
            outputNorms: Bool = false, queryPreAttentionScalar: Float? = nil, attentionSoftcap: Float? = nil,
            logitSoftcap: Float? = nil, localRopeTheta: Float? = nil
        ) {
            (self.normsScaleFromOne, self.geluGate, self.scalesEmbedding) = (
                normsScaleFromOne, geluGate, scalesEmbedding
            )
            (self.outputNorms, self.queryPreAttentionScalar) = (outputNorms, queryPreAttentionScalar)
            (self.attentionSoftcap, self.logitSoftcap, self.localRopeTheta) =
                (attentionSoftcap, logitSoftcap, localRopeTheta)
        }
    }

    /// Which Gemma the traits describe: 1, 2 (output norms) or 3 (output norms and q/k norms); nil for other families.
    public var gemmaGeneration: Int? {
        guard gemma.normsScaleFromOne else { return nil }
        return gemma.outputNorms ? (queryKeyNorm ? 3 : 2) : 1
    }

    /// Gemma's interleaving of `count` layers: every `pattern`-th layer is global, the others slide (2 for Gemma 2, 6
    /// for Gemma 3).
    public static func interleavedSlidingLayers(count: Int, pattern: Int) -> [Bool] {
        (0..<max(0, count)).map { ($0 + 1) % pattern != 0 }
    }

    /// What RMSNorm adds to its weights before scaling: 1 for Gemma, else 0.
    public var normOffset: Float { gemma.normsScaleFromOne ? 1 : 0 }
    /// The factor on attention scores before the softmax.
    public var attentionScale: Float { 1 / (gemma.queryPreAttentionScalar ?? Float(headDim)).squareRoot() }
    /// The gated MLP's activation.
    public var gatedActivation: GatedActivation { gemma.geluGate ? .geluTanh : .silu }
    /// The factor on the embedding rows as they enter the first layer.
    public var embeddingScale: Float { gemma.scalesEmbedding ? Float(Double(dim).squareRoot()) : 1 }

    /// The window of layer `l`'s attention, nil for full attention.
    public func window(layer l: Int) -> Int? {
        slidingWindow.flatMap { w in slidingLayers.map { $0.indices.contains(l) && $0[l] } ?? true ? w : nil }
    }

    public init(
        dim: Int, ffnDim: Int, layerCount: Int, headCount: Int, kvHeadCount: Int, vocabSize: Int,
        maxSequenceLength: Int, normEpsilon: Float = 1e-5, ropeTheta: Float = 10000,
        ropeLayout: RoPELayout = .rotateHalf, ropeScaling: RoPEScaling? = nil, tiedEmbeddings: Bool = true,
        attentionBias: Bool = false, slidingWindow: Int? = nil, slidingLayers: [Bool]? = nil,
        explicitHeadDim: Int? = nil, queryKeyNorm: Bool = false, fusedProjections: Bool = false,
        gemma: GemmaTraits = GemmaTraits()
    ) {
        self.gemma = gemma
        self.fusedProjections = fusedProjections
        self.attentionBias = attentionBias
        (self.explicitHeadDim, self.queryKeyNorm) = (explicitHeadDim, queryKeyNorm)
        (self.slidingWindow, self.slidingLayers) = (slidingWindow, slidingLayers)
        self.dim = dim
        self.ffnDim = ffnDim
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.vocabSize = vocabSize
        self.maxSequenceLength = maxSequenceLength
        self.normEpsilon = normEpsilon
        self.ropeTheta = ropeTheta
        self.ropeLayout = ropeLayout
        self.ropeScaling = ropeScaling
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// Whether layer `l` turns by Gemma 3's local RoPE (``GemmaTraits/localRopeTheta``, unscaled) rather than by
    /// ``ropeTheta`` and ``ropeScaling``.
    public func turnsLocally(layer l: Int) -> Bool { gemma.localRopeTheta != nil && window(layer: l) != nil }

    /// E: D / H unless the checkpoint sets it (``explicitHeadDim``).
    public var headDim: Int { explicitHeadDim ?? dim / headCount }
    /// H·E, the width of the queries and of attention's output (D unless E is set apart).
    public var queryDim: Int { headCount * headDim }
    /// K·E
    public var kvDim: Int { kvHeadCount * headDim }

    /// Throws ``LlamaError`` when the shape cannot be a Llama model.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw LlamaError(.shape, message) }
        }
        for (name, value, limit) in [
            ("dim", dim, 1 << 16), ("ffn_dim", ffnDim, 1 << 20), ("layers", layerCount, 1 << 10),
            ("heads", headCount, 1 << 10),
            ("kv_heads", kvHeadCount, 1 << 10), ("vocab_size", vocabSize, Self.vocabularyLimit),
            ("max_sequence_length", maxSequenceLength, Self.sequenceLimit),
        ] {
            try require(value > 0, "\(name) must be positive, got \(value)")
            try require(
                value <= limit,
                """
                \(name) is \(value), above LeanTune's limit of \(limit) (the largest published models stay far below \
                it)
                """
            )
        }
        if let e = explicitHeadDim {
            try require(e > 0 && e <= 1 << 16, "head dim must be in 1...\(1 << 16), got \(e)")
        } else {
            try require(dim % headCount == 0, "dim \(dim) is not divisible by heads \(headCount)")
        }
        try require(headCount % kvHeadCount == 0, "heads \(headCount) is not a multiple of kv_heads \(kvHeadCount)")
        try require(headDim % 2 == 0, "head dim \(headDim) must be even for RoPE")
        try require(normEpsilon > 0 && normEpsilon.isFinite, "norm epsilon must be positive, got \(normEpsilon)")
        try require(ropeTheta > 0 && ropeTheta.isFinite, "rope theta must be positive, got \(ropeTheta)")
        if let w = slidingWindow { try require(w > 0, "the sliding window must be positive, got \(w)") }
        for (name, value) in [
            ("query_pre_attn_scalar", gemma.queryPreAttentionScalar),
            ("attn_logit_softcapping", gemma.attentionSoftcap),
            ("final_logit_softcapping", gemma.logitSoftcap), ("rope_local_base_freq", gemma.localRopeTheta),
        ] {
            if let v = value { try require(v > 0 && v.isFinite, "\(name) must be positive, got \(v)") }
        }
        for count in ropeScaling?.factorCounts ?? [] {
            try require(count == headDim / 2, "RoPE scaling has \(count) frequency factors for \(headDim / 2) pairs")
        }
        if let layers = slidingLayers {
            try require(layers.count == layerCount, "\(layers.count) layer types for \(layerCount) layers")
        }
        // Each factor is bounded above, so this cannot overflow: well below 2⁵⁵ values.
        let perLayer =
            2 * queryDim * dim + 2 * kvDim * dim + 3 * ffnDim * dim + (gemma.outputNorms ? 4 : 2) * dim
            + (queryKeyNorm ? 2 * headDim : 0)
        let total = vocabSize * dim * (tiedEmbeddings ? 1 : 2) + layerCount * perLayer + dim
        try require(
            total <= Self.parameterLimit, "\(total) parameters, above LeanTune's limit of \(Self.parameterLimit)")
    }

    /// The most parameters a model may have (2⁴⁰, about 1.1 trillion); also the largest tensor a loader reads.
    public static let parameterLimit = 1 << 40
    /// The largest vocabulary (2²²); token ids read from files lie below it.
    public static let vocabularyLimit = 1 << 22
    /// The longest sequence (2²⁴ positions), for a model's context and a run's `train.seq`.
    public static let sequenceLimit = 1 << 24
}

/// What the model layer refuses: a configuration that describes no valid model, or a batch the model cannot run.
public struct LlamaError: Error, CustomStringConvertible {
    public enum Kind: Sendable { case shape, input }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { (self.kind, self.message) = (kind, message) }
    public var description: String { kind == .shape ? "invalid model shape: \(message)" : message }
}
