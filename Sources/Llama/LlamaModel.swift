import TensorCore

/// A Llama-family decoder over a ``ParameterStore``.
///
/// Three passes share one layer implementation and differ only in what they keep:
/// ``loss(_:)`` keeps nothing (forward-only, for zeroth-order methods and evaluation),
/// ``lossAndGradients(_:into:checkpointing:)`` keeps every layer's activations (or, with
/// checkpointing, each layer's input and recomputes the rest), and generation keeps a KV cache.
public final class LlamaModel {
    public let config: LlamaConfig
    public let store: any ParameterStore
    /// Where this model's activation and workspace buffers are registered.
    public let ledger: MemoryLedger
    /// The most bytes one logits chunk of the cross-entropy may take (rows ≤ this / (4·V)).
    public var logitsChunkBytes = 64 << 20
    /// Buffers of the last forward-only and the last training pass, reused while the shape holds.
    private var cachedBuffers: [PassBuffers.Kind: PassBuffers] = [:]
    /// bf16 compute: every projection and LM-head GEMM takes bf16 operands (weights from the store, activations
    /// rounded to nearest even) and accumulates in fp32 through this workspace's kernel; nil computes in fp32.
    public var bf16: BF16Workspace?
    /// A perturbation w + scale·z applied to weights as they are read (zeroth-order methods on stores whose
    /// rounding would not restore an in-place perturbation); the stored weights do not change.
    public var perturbation: WeightPerturbation?
    /// The fp32 copy of a perturbed tensor read as floats (norms; every tensor when computing in fp32).
    var perturbedFloats: AlignedBuffer<Float>?

    public var layout: ParameterLayout { store.layout }

    /// - Parameter bf16: the kernel for bf16 compute, nil for fp32.
    public init(
        config: LlamaConfig, store: any ParameterStore, bf16: BF16Kernel? = nil, ledger: MemoryLedger = .shared
    ) throws {
        try config.validate()
        guard store.layout == ParameterLayout(config) else {
            throw LlamaError(.shape, "the parameter store's layout does not match the configuration")
        }
        self.config = config
        self.store = store
        self.ledger = ledger
        self.bf16 = bf16.map { BF16Workspace(kernel: $0, ledger: ledger) }
    }

    /// A model with fp32 weights drawn from N(0, std²) (norms 1).
    public convenience init(
        randomWeights config: LlamaConfig, seed: UInt64, std: Float = 0.02,
        ledger: MemoryLedger = .shared
    ) throws {
        try config.validate()
        let source = RandomParameterStore(layout: ParameterLayout(config), seed: seed, std: std, ledger: ledger)
        try self.init(config: config, store: FP32ParameterStore(converting: source, ledger: ledger), ledger: ledger)
    }

    var logitsRows: Int { max(1, logitsChunkBytes / (4 * config.vocabSize)) }

    /// The buffers for a pass of `kind` over `batch`, reused from the last such pass when the shape matches.
    func buffers(_ kind: PassBuffers.Kind, _ batch: TokenBatch) -> PassBuffers {
        let key = PassBuffers.Key(kind: kind, batch: batch.batchSize, length: batch.length, bf16: bf16 != nil)
        if let b = cachedBuffers[kind], b.key == key { return b }
        cachedBuffers[kind] = nil  // free the old ones before allocating
        let b = PassBuffers(key, config: config, logitsRows: logitsRows, ledger: ledger)
        cachedBuffers[kind] = b
        return b
    }

    /// Frees the buffers kept for forward-only passes (evaluation between training steps).
    public func releaseForwardBuffers() { cachedBuffers[.forwardOnly] = nil }

    // MARK: - Forward-only

    /// Mean next-token loss of `batch`, keeping no activations: memory is the weights, one layer's
    /// buffers and one logits chunk.
    public func loss(_ batch: TokenBatch) throws -> LossResult {
        try check(batch)
        let s = PassShape(batch)
        let b = buffers(.forwardOnly, batch)
        residualForward(batch, s, b)
        let rows = finalNormAndLoss(b.residuals.pointer, batch, s, b.workspace, gradient: nil)
        return LossResult(sum: rows.reduce(0, +), count: batch.scoredCount)
    }

    /// The loss of each sequence of `batch` (sum and count of its scored tokens), forward only.
    public func sequenceLosses(_ batch: TokenBatch) throws -> [LossResult] {
        try check(batch)
        let s = PassShape(batch)
        let b = buffers(.forwardOnly, batch)
        residualForward(batch, s, b)
        let rows = finalNormAndLoss(b.residuals.pointer, batch, s, b.workspace, gradient: nil)
        return (0..<batch.batchSize).map { i in
            let span = i * batch.length..<(i + 1) * batch.length
            return LossResult(
                sum: rows[span].reduce(0, +), count: batch.targets[span].reduce(0) { $0 + ($1 >= 0 ? 1 : 0) })
        }
    }

    /// Logits [N, V] for every position (for tests and small evaluations; training never forms them).
    public func logits(_ batch: TokenBatch) throws -> [Float] {
        try check(batch)
        let s = PassShape(batch)
        let b = buffers(.forwardOnly, batch), ws = b.workspace
        residualForward(batch, s, b)
        return outputLogits(b.residuals.pointer, rows: s.rows, ws)
    }

    /// Logits [rows, V] of the last layer's output x: final norm, head, and soft-capping where the model has it.
    func outputLogits(_ x: UnsafePointer<Float>, rows n: Int, _ ws: Workspace) -> [Float] {
        norm(layout.finalNorm, x, ws.normed, rstd: nil, rows: n, dim: config.dim)
        var out = [Float](repeating: 0, count: n * config.vocabSize)
        out.withUnsafeMutableBufferPointer { o in
            project(layout.head, activation(ws.normed, count: n * config.dim), rows: n, into: o.baseAddress!)
            if let cap = config.gemma.logitSoftcap { Softcap.apply(o.baseAddress!, count: o.count, cap: cap) }
        }
        return out
    }

    /// Embedding and all layers in place in the one [N, D] residual buffer.
    private func residualForward(_ batch: TokenBatch, _ s: PassShape, _ b: PassBuffers) {
        let x = b.residuals.pointer, a = b.layers[0]
        let rope = LayerRoPE(config) { RoPE(config, batch: batch, local: $0) }
        embed(batch.inputs, into: x)
        for l in 0..<config.layerCount {
            layerForward(
                l, x: x, out: x, a, s, kv: KVTarget(k: a.k!, v: a.v!, keys: s.length, offset: 0), rope: rope[layer: l],
                b.workspace)
        }
    }

    // MARK: - Shared pieces

    /// Where a layer's keys and values go and which keys attention reads: `keys` rows per sequence,
    /// the new ones written at row `offset`.
    struct KVTarget {
        let k, v: UnsafeMutablePointer<Float>
        let keys: Int
        let offset: Int
    }

    /// One decoder layer: out = h + MLP(norm(h)) with h = x + Attn(norm(x)); with output norms (Gemma 2, 3)
    /// h = x + norm(Attn(norm(x))) and out = h + norm(MLP(norm(h))). `out` may be `x`.
    func layerForward(
        _ l: Int, x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, _ a: LayerActivations, _ s: PassShape,
        kv: KVTarget, rope: RoPE, _ ws: Workspace
    ) {
        let p = layout.layers[l], c = config, n = s.rows
        norm(p.attentionNorm, x, ws.normed, rstd: a.rstdAttention, rows: n, dim: c.dim)
        let kNew = kv.k + kv.offset * c.kvDim, vNew = kv.v + kv.offset * c.kvDim
        let normed = activation(ws.normed, count: n * c.dim)  // rounded once for the three projections
        project(p.query, normed, rows: n, into: a.q)
        project(p.key, normed, rows: n, into: kNew)
        project(p.value, normed, rows: n, into: vNew)
        addBias(p.queryBias, to: a.q, rows: n)
        addBias(p.keyBias, to: kNew, rows: n)
        addBias(p.valueBias, to: vNew, rows: n)
        if let norms = a.queryKeyNorm, let qNorm = p.queryNorm, let kNorm = p.keyNorm {
            // per head, in place: the projections are kept for backward
            for (id, y, x, rstd, heads) in [
                (qNorm, a.q, norms.q, norms.rstdQ, c.headCount), (kNorm, kNew, norms.k, norms.rstdK, c.kvHeadCount),
            ] {
                x.update(from: y, count: n * heads * c.headDim)
                norm(id, x, y, rstd: rstd, rows: n * heads, dim: c.headDim)
            }
        }
        rope.apply(a.q, rows: n, heads: c.headCount)
        rope.apply(kNew, rows: n, heads: c.kvHeadCount)
        Attention.forward(
            q: a.q, k: kv.k, v: kv.v, out: a.attention, lse: a.lse, attentionShape(s, kv, layer: l), bf16: bf16?.kernel,
            ledger: ledger)
        let attention = activation(a.attention, count: n * c.queryDim, keep: a.kept?.attention)
        addOutput(
            p.output, attention, norm: p.attentionOutputNorm, a.outputNorms?.attention, a.outputNorms?.rstdAttention,
            to: x, into: a.residualMid, rows: n, ws)

        norm(p.ffnNorm, a.residualMid, ws.normed, rstd: a.rstdFFN, rows: n, dim: c.dim)
        let normedMid = activation(ws.normed, count: n * c.dim)
        project(p.gate, normedMid, rows: n, into: a.gate)
        project(p.up, normedMid, rows: n, into: a.up)
        c.gatedActivation.forward(gate: a.gate, up: a.up, ws.hidden, count: n * c.ffnDim)
        if let kept = a.kept {
            Conversions.toBF16(a.gate, kept.gate, count: n * c.ffnDim)
            Conversions.toBF16(a.up, kept.up, count: n * c.ffnDim)
        }
        addOutput(
            p.down, activation(ws.hidden, count: n * c.ffnDim), norm: p.ffnOutputNorm, a.outputNorms?.ffn,
            a.outputNorms?.rstdFFN, to: a.residualMid, into: out, rows: n, ws)
    }

    /// y = residual + x·Wᵀ, or with an output norm y = residual + norm(x·Wᵀ), keeping x·Wᵀ in `kept` and its 1/rms in
    /// `rstd`. `y` may be `residual`.
    private func addOutput(
        _ id: ParameterID, _ x: GEMMOperand, norm normID: ParameterID?, _ kept: UnsafeMutablePointer<Float>?,
        _ rstd: UnsafeMutablePointer<Float>?, to residual: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
        rows n: Int, _ ws: Workspace
    ) {
        let d = config.dim
        if residual != UnsafePointer(y) { y.update(from: residual, count: n * d) }
        guard let normID, let kept else { return project(id, x, rows: n, into: y, accumulate: true) }
        project(id, x, rows: n, into: kept)
        norm(normID, kept, ws.normed, rstd: rstd, rows: n, dim: d)
        for i in 0..<n * d { y[i] += ws.normed[i] }
    }

    /// RMSNorm by parameter `id` of `rows` rows of `dim`, with the model's ε and offset.
    func norm(
        _ id: ParameterID, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>?,
        rows n: Int, dim d: Int
    ) {
        withFloats(id) { w in
            RMSNorm.forward(
                x, w, y, rstd: rstd, rows: n, dim: d, epsilon: config.normEpsilon, offset: config.normOffset)
        }
    }

    func attentionShape(_ s: PassShape, _ kv: KVTarget, layer l: Int) -> AttentionShape {
        AttentionShape(
            batch: s.batch, queries: s.length, keys: kv.keys, heads: config.headCount,
            kvHeads: config.kvHeadCount, headDim: config.headDim, queryOffset: kv.offset,
            firstKeys: s.segmentStarts, window: config.window(layer: l), scale: config.attentionScale,
            softcap: config.gemma.attentionSoftcap)
    }

    /// Final norm of x [N, D] into the workspace, then the chunked cross-entropy. Returns each row's loss.
    func finalNormAndLoss(
        _ x: UnsafePointer<Float>, _ batch: TokenBatch, _ s: PassShape, _ ws: Workspace,
        gradient: (
            rstd: UnsafeMutablePointer<Float>, dNormed: UnsafeMutablePointer<Float>,
            dHead: UnsafeMutablePointer<Float>?, scale: Float
        )?
    ) -> [Double] {
        norm(layout.finalNorm, x, ws.normed, rstd: gradient?.rstd, rows: s.rows, dim: config.dim)
        return withWeight(layout.head) { w in
            batch.targets.withUnsafeBufferPointer { t in
                CrossEntropy.run(
                    x: ws.normed, head: w, bf16: bf16, targets: t, rows: s.rows, dim: config.dim,
                    vocab: config.vocabSize, softcap: config.gemma.logitSoftcap,
                    logits: ws.logits, chunkRows: ws.logitsChunkRows,
                    gradient: gradient.map { CrossEntropy.Gradient(dx: $0.dNormed, dHead: $0.dHead, scale: $0.scale) })
            }
        }
    }

    func check(_ batch: TokenBatch) throws {
        if batch.length > config.maxSequenceLength {
            throw LlamaError(
                .input,
                """
                sequence length \(batch.length) exceeds the model's maximum \(config.maxSequenceLength); shorten \
                or split the sequences
                """
            )
        }
        let v = Int32(config.vocabSize)
        if let bad = batch.inputs.first(where: { $0 < 0 || $0 >= v }) {
            throw LlamaError(
                .input, "token id \(bad) is outside the vocabulary [0, \(v)); the tokenizer does not match the model")
        }
        if let bad = batch.targets.first(where: { $0 >= v }) {
            throw LlamaError(
                .input, "target id \(bad) is outside the vocabulary [0, \(v)); the tokenizer does not match the model")
        }
    }
}
