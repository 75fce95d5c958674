import TensorCore

/// One allocation handed out as consecutive 64-byte-aligned pieces.
final class Arena<Element: BitwiseCopyable> {
    let storage: AlignedBuffer<Element>
    private var used = 0

    /// An arena for pieces of the given element counts.
    init(_ counts: [Int], category: MemoryCategory, ledger: MemoryLedger) {
        storage = AlignedBuffer(count: counts.reduce(0) { $0 + Arena.padded($1) }, category: category, ledger: ledger)
    }

    /// `n` rounded up to whole 64-byte lines of elements.
    static func padded(_ n: Int) -> Int {
        let line = 64 / MemoryLayout<Element>.stride
        return (n + line - 1) / line * line
    }

    /// Bytes of an arena with pieces of these counts.
    static func bytes(_ counts: [Int]) -> Int { MemoryLayout<Element>.stride * counts.reduce(0) { $0 + padded($1) } }

    func take(_ n: Int) -> UnsafeMutablePointer<Element> {
        let p = storage.pointer + used
        used += Arena.padded(n)
        precondition(used <= storage.count, "Arena overflow")
        return p
    }
}

/// Rows and sequence shape of one forward pass.
struct PassShape {
    /// B
    let batch: Int
    /// New tokens per sequence (Tq).
    let length: Int
    /// Packed samples' starts (see ``TokenBatch/segmentStarts``), nil for one sample per sequence.
    var segmentStarts: [Int32]? = nil
    var rows: Int { batch * length }

    init(batch: Int, length: Int) {
        self.batch = batch
        self.length = length
    }

    init(_ tokens: TokenBatch) {
        self.init(batch: tokens.batchSize, length: tokens.length)
        segmentStarts = tokens.segmentStarts
    }
}

/// What one layer's forward writes and its backward reads (N rows). Layer inputs are kept apart,
/// in the residual stream.
struct LayerActivations {
    /// [N] 1/rms of the attention-norm input and of the MLP-norm input.
    var rstdAttention, rstdFFN: UnsafeMutablePointer<Float>
    /// q [N, H·E] after RoPE; k, v [N, K·E] (k after RoPE); nil when a KV cache holds them.
    var q: UnsafeMutablePointer<Float>
    var k, v: UnsafeMutablePointer<Float>?
    /// [B, H, T] row log-sum-exp of the attention scores.
    var lse: UnsafeMutablePointer<Float>
    /// [N, D] residual after attention.
    var residualMid: UnsafeMutablePointer<Float>
    /// [N, H·E] attention output before the o projection, and [N, F] the MLP gate and up projections, in fp32 as
    /// computed. With ``kept`` these point at the workspace's fp32 scratch, which every layer shares.
    var attention, gate, up: UnsafeMutablePointer<Float>
    /// The bf16 bits of attention, gate and up that backward reads, where the layer keeps them in bf16 (see
    /// ``PassBuffers/keepsBF16``); nil when it keeps the fp32 values themselves.
    var kept: Kept?
    /// The per-head query and key norms' inputs and 1/rms, where the configuration has those norms.
    var queryKeyNorm: QueryKeyNorm?
    /// Attention's and the MLP's outputs before their norms, and those norms' 1/rms, where the configuration has them.
    var outputNorms: OutputNorms?

    struct Kept {
        let attention, gate, up: UnsafeMutablePointer<UInt16>
    }

    struct QueryKeyNorm {
        /// [N, H·E] and [N, K·E]: the projections (biases added) before the norm.
        let q, k: UnsafeMutablePointer<Float>
        /// [N·H] and [N·K]: 1/rms of each head's row.
        let rstdQ, rstdK: UnsafeMutablePointer<Float>
    }

    struct OutputNorms {
        /// [N, D] o(attention) and down(hidden), the norms' inputs.
        let attention, ffn: UnsafeMutablePointer<Float>
        /// [N] their 1/rms.
        let rstdAttention, rstdFFN: UnsafeMutablePointer<Float>
    }

    /// Float counts of one layer's fp32 pieces; `bf16`: attention, gate and up are kept in bf16 (``keptCounts(_:_:)``).
    static func counts(_ c: LlamaConfig, _ s: PassShape, withKV: Bool, bf16: Bool = false) -> [Int] {
        let n = s.rows
        return [n, n, n * c.queryDim] + (withKV ? [n * c.kvDim, n * c.kvDim] : []) + [
            s.batch * c.headCount * s.length, n * c.dim,
        ]
            + (bf16 ? [] : keptCounts(c, s))
            + (c.queryKeyNorm ? [n * c.queryDim, n * c.kvDim, n * c.headCount, n * c.kvHeadCount] : [])
            + (c.gemma.outputNorms ? [n * c.dim, n * c.dim, n, n] : [])
    }

    /// Element counts of attention, gate and up.
    static func keptCounts(_ c: LlamaConfig, _ s: PassShape) -> [Int] {
        [s.rows * c.queryDim, s.rows * c.ffnDim, s.rows * c.ffnDim]
    }

    /// - Parameter kept: the bf16 arena and the fp32 scratch of attention, gate and up when the layer keeps them in
    /// bf16.
    init(
        _ c: LlamaConfig, _ s: PassShape, withKV: Bool, from a: Arena<Float>,
        kept: (Arena<UInt16>, Workspace.Shared)? = nil
    ) {
        let n = s.rows
        rstdAttention = a.take(n)
        rstdFFN = a.take(n)
        q = a.take(n * c.queryDim)
        k = withKV ? a.take(n * c.kvDim) : nil
        v = withKV ? a.take(n * c.kvDim) : nil
        lse = a.take(s.batch * c.headCount * s.length)
        residualMid = a.take(n * c.dim)
        if let (bits, shared) = kept {
            (attention, gate, up) = (shared.attention, shared.gate, shared.up)
            self.kept = Kept(
                attention: bits.take(n * c.queryDim), gate: bits.take(n * c.ffnDim), up: bits.take(n * c.ffnDim))
        } else {
            (attention, gate, up) = (a.take(n * c.queryDim), a.take(n * c.ffnDim), a.take(n * c.ffnDim))
        }
        if c.queryKeyNorm {
            queryKeyNorm = QueryKeyNorm(
                q: a.take(n * c.queryDim), k: a.take(n * c.kvDim), rstdQ: a.take(n * c.headCount),
                rstdK: a.take(n * c.kvHeadCount))
        }
        if c.gemma.outputNorms {
            outputNorms = OutputNorms(
                attention: a.take(n * c.dim), ffn: a.take(n * c.dim), rstdAttention: a.take(n), rstdFFN: a.take(n))
        }
    }
}

/// Scratch that no pass keeps: recomputed norms, the MLP activation, the logits chunk and (for
/// backward) the activation gradients of one layer.
struct Workspace {
    let arena: Arena<Float>
    /// [N, D] normalised layer input (recomputed in backward).
    let normed: UnsafeMutablePointer<Float>
    /// [N, F] SiLU(gate)·up; in backward reused for d(up).
    let hidden: UnsafeMutablePointer<Float>
    /// [chunk, V] logits of one chunk of rows.
    let logits: UnsafeMutablePointer<Float>
    let logitsChunkRows: Int
    /// Backward only: [N, D] residual-stream gradient, [N, max(D, H·E)] gradient into a norm output or into
    /// attention's output, [N, H·E] dq, [N, K·E] dk and dv, [N, F] d(hidden) and d(gate) (apart, so the SwiGLU
    /// backward loop has no aliasing and vectorises).
    let dResidual, dNormed, dq, dk, dv, dHidden, dGate: UnsafeMutablePointer<Float>?
    /// Backward with output norms: [N, D] the gradient into an output norm's input.
    let dOutput: UnsafeMutablePointer<Float>?
    /// Layers that keep attention, gate and up in bf16 compute them here in fp32: [N, H·E], [N, F], [N, F].
    let shared: Shared?

    struct Shared {
        let attention, gate, up: UnsafeMutablePointer<Float>
    }

    /// Rows of one logits chunk: chunks of at most `logitsRows`, made equal.
    static func chunkRows(_ n: Int, logitsRows: Int) -> Int {
        let chunks = (n + max(1, logitsRows) - 1) / max(1, logitsRows)
        return (n + chunks - 1) / chunks
    }

    /// Float counts of the pieces (the memory plan uses the same numbers).
    static func counts(_ c: LlamaConfig, _ s: PassShape, logitsRows: Int, backward: Bool, shared: Bool = false) -> [Int]
    {
        let n = s.rows, chunk = chunkRows(n, logitsRows: logitsRows)
        let wide = n * max(c.dim, c.queryDim)
        return [n * c.dim, n * c.ffnDim, chunk * c.vocabSize]
            + (backward
                ? [n * c.dim, wide, n * c.queryDim, n * c.kvDim, n * c.kvDim, n * c.ffnDim, n * c.ffnDim] : [])
            + (backward && c.gemma.outputNorms ? [n * c.dim] : [])
            + (shared ? [n * c.queryDim, n * c.ffnDim, n * c.ffnDim] : [])
    }

    /// - Parameters:
    ///   - logitsRows: the most rows of logits one chunk may hold; chunks are made equal.
    ///   - shared: with the fp32 scratch of layers that keep attention, gate and up in bf16.
    init(
        _ c: LlamaConfig, _ s: PassShape, logitsRows: Int, backward: Bool, shared withShared: Bool = false,
        ledger: MemoryLedger
    ) {
        let n = s.rows, chunk = Workspace.chunkRows(n, logitsRows: logitsRows)
        arena = Arena<Float>(
            Workspace.counts(c, s, logitsRows: logitsRows, backward: backward, shared: withShared),
            category: .workspace, ledger: ledger)
        normed = arena.take(n * c.dim)
        hidden = arena.take(n * c.ffnDim)
        logits = arena.take(chunk * c.vocabSize)
        logitsChunkRows = chunk
        dResidual = backward ? arena.take(n * c.dim) : nil
        dNormed = backward ? arena.take(n * max(c.dim, c.queryDim)) : nil
        dq = backward ? arena.take(n * c.queryDim) : nil
        dk = backward ? arena.take(n * c.kvDim) : nil
        dv = backward ? arena.take(n * c.kvDim) : nil
        dHidden = backward ? arena.take(n * c.ffnDim) : nil
        dGate = backward ? arena.take(n * c.ffnDim) : nil
        dOutput = backward && c.gemma.outputNorms ? arena.take(n * c.dim) : nil
        shared =
            withShared
            ? Shared(
                attention: arena.take(n * c.queryDim), gate: arena.take(n * c.ffnDim), up: arena.take(n * c.ffnDim))
            : nil
    }
}

/// Everything one kind of pass needs for one batch shape, kept by the model between calls so that
/// repeated steps do not fault fresh pages in (the ledger shows them as long as they live).
final class PassBuffers {
    enum Kind: Hashable {
        case forwardOnly
        case training(checkpointing: Bool)
    }

    struct Key: Hashable {
        let kind: Kind
        let batch, length: Int
        /// Computing in bf16 (see ``keepsBF16``).
        var bf16 = false
    }

    let key: Key
    /// Training: the input of every layer, then the final output ((L+1)·N·D). Forward-only: one [N, D].
    let residuals: AlignedBuffer<Float>
    let activationArena: Arena<Float>
    /// The bf16 activations layers keep (``keepsBF16(_:bf16:)``), nil otherwise.
    let keptArena: Arena<UInt16>?
    /// One set per layer in training without checkpointing, otherwise one shared set.
    let layers: [LayerActivations]
    /// [N] rstd of the final norm (training).
    let rstdFinal: UnsafeMutablePointer<Float>
    let workspace: Workspace

    /// Residual rows, activation sets and whether backward buffers exist, for a pass kind.
    static func plan(_ kind: Kind, _ c: LlamaConfig) -> (residuals: Int, sets: Int, backward: Bool) {
        switch kind {
        case .forwardOnly: (1, 1, false)
        case .training(let checkpointing): (c.layerCount + 1, checkpointing ? 1 : c.layerCount, true)
        }
    }

    /// Whether every layer keeps its attention output, gate and up projections in bf16 for backward: when computing
    /// in bf16 (the GEMMs round them to bf16 anyway) and training without checkpointing, where that halves the
    /// largest activations. With checkpointing or forward only one set is kept, which the fp32 scratch would outweigh.
    static func keepsBF16(_ kind: Kind, bf16: Bool) -> Bool { bf16 && kind == .training(checkpointing: false) }

    /// Float counts of the activation arena's pieces.
    static func activationCounts(_ kind: Kind, _ c: LlamaConfig, _ s: PassShape, bf16: Bool = false) -> [Int] {
        let layer = LayerActivations.counts(c, s, withKV: true, bf16: keepsBF16(kind, bf16: bf16))
        return Array(repeating: layer, count: plan(kind, c).sets).flatMap { $0 } + [s.rows]
    }

    /// Element counts of the kept bf16 activations' pieces (none unless ``keepsBF16(_:bf16:)``).
    static func keptCounts(_ kind: Kind, _ c: LlamaConfig, _ s: PassShape, bf16: Bool) -> [Int] {
        keepsBF16(kind, bf16: bf16)
            ? Array(repeating: LayerActivations.keptCounts(c, s), count: plan(kind, c).sets).flatMap { $0 } : []
    }

    init(_ key: Key, config c: LlamaConfig, logitsRows: Int, ledger: MemoryLedger) {
        self.key = key
        let s = PassShape(batch: key.batch, length: key.length), n = s.rows
        let (residualCount, sets, backward) = PassBuffers.plan(key.kind, c),
            keeps = PassBuffers.keepsBF16(key.kind, bf16: key.bf16)
        residuals = AlignedBuffer(count: residualCount * n * c.dim, category: .activations, ledger: ledger)
        let arena = Arena<Float>(
            PassBuffers.activationCounts(key.kind, c, s, bf16: key.bf16), category: .activations, ledger: ledger)
        workspace = Workspace(c, s, logitsRows: logitsRows, backward: backward, shared: keeps, ledger: ledger)
        let kept =
            keeps
            ? Arena<UInt16>(
                PassBuffers.keptCounts(key.kind, c, s, bf16: key.bf16), category: .activations, ledger: ledger) : nil
        let shared = workspace.shared
        layers = (0..<sets).map { _ in
            LayerActivations(c, s, withKV: true, from: arena, kept: kept.flatMap { k in shared.map { (k, $0) } })
        }
        keptArena = kept
        rstdFinal = arena.take(n)
        activationArena = arena
    }
}
