import RealModule
import TensorCore

/// Sizes of one causal grouped-query attention call.
public struct AttentionShape: Sendable {
    /// B
    public var batch: Int
    /// Queries per sequence (T in training, the new tokens in generation).
    public var queries: Int
    /// Keys per sequence (T in training, cached + new tokens in generation); also the row stride
    /// between sequences in k and v.
    public var keys: Int
    /// H, K, E
    public var heads: Int, kvHeads: Int, headDim: Int
    /// Position of query 0 among the keys: query i sees keys j ≤ i + queryOffset.
    public var queryOffset: Int
    /// Packed sequences: [B·Tq] the first key each query may see (the start of its sample), non-decreasing
    /// along a sequence; nil when every query sees keys from 0.
    public var firstKeys: [Int32]?
    /// Sliding-window attention: query i sees only the `window` keys up to its own (keys j > i + queryOffset − window).
    public var window: Int?
    /// The factor on q·k (1/√E unless the model sets it).
    public var scale: Float
    /// Soft-capping: scores s become c·tanh(s/c) before the softmax (Gemma 2); nil: none.
    public var softcap: Float?

    public init(
        batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int, queryOffset: Int,
        firstKeys: [Int32]? = nil, window: Int? = nil, scale: Float? = nil, softcap: Float? = nil
    ) {
        self.window = window
        self.scale = scale ?? 1 / Float(headDim).squareRoot()
        self.softcap = softcap
        precondition(
            firstKeys == nil || firstKeys!.count == batch * queries, "AttentionShape: firstKeys needs B·Tq entries")
        self.batch = batch
        self.queries = queries
        self.keys = keys
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.queryOffset = queryOffset
        self.firstKeys = firstKeys
    }

    /// Score matrices of one query block that each attention task holds: scores; in backward also their gradient,
    /// and with soft-capping the cap's slope.
    func scratchMatrices(backward: Bool) -> Int { backward ? (softcap == nil ? 2 : 3) : 1 }
    /// Query i of sequence b sees keys firstKey(b, i) ..< visibleKeys(i).
    func visibleKeys(_ i: Int) -> Int { min(keys, i + queryOffset + 1) }
    /// The later of the sample's start (packing) and the window's start; non-decreasing along a sequence.
    func firstKey(_ b: Int, _ i: Int) -> Int {
        max(firstKeys.map { Int($0[b * queries + i]) } ?? 0, window.map { i + queryOffset + 1 - $0 } ?? 0)
    }
}

/// Causal scaled-dot-product attention. Work is split over (sequence, head) pairs, each task
/// running single-threaded GEMMs on its own Tq×Tk score matrices; the probabilities are never kept:
/// backward recomputes them from the saved log-sum-exp of each row (as FlashAttention does), so
/// saved memory is O(T) per head, not O(T²).
///
/// With a bf16 kernel every GEMM takes bf16 operands (fp32 accumulation): q, k, v (and dOut) are rounded once
/// per call, each task rounds its probabilities and score gradients into its own ``BF16Workspace``; softmax,
/// its backward and the log-sum-exp stay fp32.
public enum Attention {
    /// Query rows per block: a block of rows only multiplies the keys its last row can see, which
    /// skips most of the masked upper triangle.
    static let queryBlock = 64

    /// q [B·Tq, H·E], k and v [B·Tk, K·E] → out [B·Tq, H·E]; lse [B, H, Tq] if given.
    /// Query head h reads kv head h / (H/K). Cost: ≈ 2·B·H·Tq·Tk·E FLOPs in GEMM when causal.
    public static func forward(
        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>?, _ s: AttentionShape,
        bf16: BF16Kernel? = nil, ledger: MemoryLedger = .shared
    ) {
        let (tq, tk, e) = (s.queries, s.keys, s.headDim)
        let (qStride, kvStride) = (s.heads * e, s.kvHeads * e)
        let x = Operands(
            [(q, s.batch * tq * qStride), (k, s.batch * tk * kvStride), (v, s.batch * tk * kvStride)], bf16: bf16,
            ledger: ledger)
        nonisolated(unsafe) let (out, lse) = (out, lse)  // each (b, h) writes its own out columns and lse rows
        forEachHead(s, scratchMatrices: s.scratchMatrices(backward: false), bf16: bf16, ledger: ledger) {
            b, h, scores, ws in
            let kvh = h / (s.heads / s.kvHeads), kvh0 = b * tk * kvStride + kvh * e
            for rows in blocks(s) {  // the block reads keys k0 ..< k0 + n
                let m = rows.count, k0 = s.firstKey(b, rows.lowerBound), n = s.visibleKeys(rows.upperBound - 1) - k0
                let qOff = (b * tq + rows.lowerBound) * qStride + h * e, kvOff = kvh0 + k0 * kvStride
                GEMM.multiply(
                    m: m, n: n, k: e, x[0, qOff], lda: qStride, x[1, kvOff], ldb: kvStride, transB: true,
                    scores, ldc: n, alpha: s.scale, workspace: ws)
                if let cap = s.softcap { Softcap.apply(scores, count: m * n, cap: cap) }
                softmaxRows(
                    scores, s, b, rows: rows, firstKey: k0, width: n, lse: lse.map { $0 + (b * s.heads + h) * tq })
                GEMM.multiply(
                    m: m, n: e, k: n, .f32(scores), lda: n, x[2, kvOff], ldb: kvStride, out + qOff, ldc: qStride,
                    workspace: ws)
            }
        }
    }

    /// Given dOut [B·Tq, H·E]: writes dq [B·Tq, H·E], adds into dk, dv [B·Tk, K·E].
    /// P = exp(scale·QKᵀ − lse); dV += Pᵀ·dO; dS = P ⊙ (dO·Vᵀ − rowsum(P ⊙ dO·Vᵀ));
    /// dQ = scale·dS·K; dK += scale·dSᵀ·Q. With soft-capping, P = exp(c·tanh(scale·QKᵀ/c) − lse) and dS is multiplied
    /// by the cap's slope 1 − tanh².
    public static func backward(
        dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
        lse: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, _ s: AttentionShape, bf16: BF16Kernel? = nil, ledger: MemoryLedger = .shared
    ) {
        let (tq, tk, e) = (s.queries, s.keys, s.headDim)
        let (qStride, kvStride) = (s.heads * e, s.kvHeads * e)
        let (qCount, kvCount) = (s.batch * tq * qStride, s.batch * tk * kvStride)
        let x = Operands([(q, qCount), (k, kvCount), (v, kvCount), (dOut, qCount)], bf16: bf16, ledger: ledger)
        // Query heads that share a kv head add into the same dk, dv columns: the tasks are split
        // by kv head so that no two tasks write the same columns.
        nonisolated(unsafe) let (lse, dq, dk, dv) = (lse, dq, dk, dv)
        forEachHead(s, scratchMatrices: s.scratchMatrices(backward: true), bf16: bf16, ledger: ledger) {
            b, h, scratch, ws in
            let kvh = h / (s.heads / s.kvHeads)
            for rows in blocks(s) {  // the block reads keys k0 ..< k0 + n
                let m = rows.count, k0 = s.firstKey(b, rows.lowerBound), n = s.visibleKeys(rows.upperBound - 1) - k0
                let kvOff = (b * tk + k0) * kvStride + kvh * e
                let p = scratch, dp = scratch + m * n, slope = scratch + 2 * m * n
                let qOff = (b * tq + rows.lowerBound) * qStride + h * e
                GEMM.multiply(
                    m: m, n: n, k: e, x[0, qOff], lda: qStride, x[1, kvOff], ldb: kvStride, transB: true,
                    p, ldc: n, alpha: s.scale, workspace: ws)
                if let cap = s.softcap { Softcap.apply(p, count: m * n, cap: cap, slope: slope) }
                exponentiate(p, s, b, rows: rows, firstKey: k0, width: n, lse: lse + (b * s.heads + h) * tq)
                GEMM.multiply(
                    m: m, n: n, k: e, x[3, qOff], lda: qStride, x[2, kvOff], ldb: kvStride, transB: true,
                    dp, ldc: n, workspace: ws)
                GEMM.multiply(
                    m: n, n: e, k: m, .f32(p), lda: n, transA: true, x[3, qOff], ldb: qStride,
                    dv + kvOff, ldc: kvStride, beta: 1, workspace: ws)
                softmaxBackwardRows(p, dp, s, b, rows: rows, firstKey: k0, width: n)
                if s.softcap != nil { for j in 0..<m * n { dp[j] *= slope[j] } }
                GEMM.multiply(
                    m: m, n: e, k: n, .f32(dp), lda: n, x[1, kvOff], ldb: kvStride,
                    dq + qOff, ldc: qStride, alpha: s.scale, workspace: ws)
                GEMM.multiply(
                    m: n, n: e, k: m, .f32(dp), lda: n, transA: true, x[0, qOff], ldb: qStride,
                    dk + kvOff, ldc: kvStride, alpha: s.scale, beta: 1, workspace: ws)
            }
        }
    }

    /// Bytes a bf16 attention call allocates besides its fp32 score scratch: q, k, v (and dOut in backward) rounded
    /// once, and each task's rounded probabilities or score gradients (one query block's).
    public static func bf16Bytes(_ s: AttentionShape, backward: Bool, threads: Int) -> Int {
        let (q, kv) = (s.batch * s.queries * s.heads * s.headDim, s.batch * s.keys * s.kvHeads * s.headDim)
        let tasks = min(threads, s.batch * s.kvHeads), block = min(queryBlock, s.queries) * s.keys
        return 2 * (q * (backward ? 2 : 1) + 2 * kv) + 2 * tasks * block
    }

    /// The GEMM operands a call reads from its tensors: the fp32 values, or their bf16 bits rounded once.
    private struct Operands: @unchecked Sendable {  // read-only while the tasks run
        let floats: [UnsafePointer<Float>]
        let bits: [UnsafePointer<UInt16>]
        let storage: AlignedBuffer<UInt16>?

        init(_ tensors: [(UnsafePointer<Float>, Int)], bf16: BF16Kernel?, ledger: MemoryLedger) {
            floats = tensors.map(\.0)
            guard bf16 != nil else { (bits, storage) = ([], nil); return }
            let all = AlignedBuffer<UInt16>(
                count: tensors.reduce(0) { $0 + $1.1 }, category: .workspace, ledger: ledger)
            var at = 0, starts: [UnsafePointer<UInt16>] = []
            for (x, count) in tensors {
                Conversions.toBF16(x, all.pointer + at, count: count)
                starts.append(UnsafePointer(all.pointer + at))
                at += count
            }
            (bits, storage) = (starts, all)
        }

        /// Tensor `i` from element `offset` on.
        subscript(_ i: Int, _ offset: Int) -> GEMMOperand {
            bits.isEmpty ? .f32(floats[i] + offset) : .bf16(bits[i] + offset)
        }
    }

    /// The query-row blocks of one (sequence, head).
    private static func blocks(_ s: AttentionShape) -> [Range<Int>] {
        stride(from: 0, to: s.queries, by: queryBlock).map { $0..<min(s.queries, $0 + queryBlock) }
    }

    /// Runs `body(b, h, scratch)` for every (sequence, query head), in parallel over
    /// (sequence, kv head) groups, with BLAS single-threaded inside. Each task owns a scratch of
    /// `scratchMatrices` matrices of one query block's scores.
    /// With `bf16`, each task also owns a ``BF16Workspace`` for its rounded operands.
    private static func forEachHead(
        _ s: AttentionShape, scratchMatrices: Int, bf16: BF16Kernel?, ledger: MemoryLedger,
        _ body: (Int, Int, UnsafeMutablePointer<Float>, BF16Workspace?) -> Void
    ) {
        let groups = s.batch * s.kvHeads, perGroup = s.heads / s.kvHeads
        GEMM.withSingleThreadedBLAS {
            Parallel.forEachChunk(groups, grain: 1) { range in
                let scratch = AlignedBuffer<Float>(
                    count: scratchMatrices * min(queryBlock, s.queries) * s.keys, category: .workspace, ledger: ledger)
                let ws = bf16.map { BF16Workspace(kernel: $0, ledger: ledger) }
                for g in range {
                    let b = g / s.kvHeads, kvh = g % s.kvHeads
                    for h in kvh * perGroup..<(kvh + 1) * perGroup { body(b, h, scratch.pointer, ws) }
                }
            }
        }
    }

    /// The visible columns of query row i in a block whose columns start at key k0.
    private static func visible(_ s: AttentionShape, _ b: Int, _ i: Int, firstKey k0: Int) -> Range<Int> {
        s.firstKey(b, i) - k0..<s.visibleKeys(i) - k0
    }

    /// Row-wise masked softmax in place over a block of rows `width` wide; masked entries become 0.
    private static func softmaxRows(
        _ x: UnsafeMutablePointer<Float>, _ s: AttentionShape, _ b: Int, rows: Range<Int>, firstKey k0: Int,
        width tk: Int,
        lse: UnsafeMutablePointer<Float>?
    ) {
        for i in rows {
            let cols = visible(s, b, i, firstKey: k0), row = x + (i - rows.lowerBound) * tk + cols.lowerBound,
                n = cols.count
            let m = Vector.max(row, n)
            var sum: Float = 0
            for j in 0..<n {
                let ex = FastMath.exp(row[j] - m)
                row[j] = ex
                sum = Relaxed.sum(sum, ex)
            }
            let inv = 1 / sum
            for j in 0..<n { row[j] *= inv }
            zeroOutside(cols, row: x + (i - rows.lowerBound) * tk, width: tk)
            lse?[i] = m + Float.log(sum)
        }
    }

    /// Scores → probabilities from the saved log-sum-exp; masked entries become 0.
    private static func exponentiate(
        _ x: UnsafeMutablePointer<Float>, _ s: AttentionShape, _ b: Int, rows: Range<Int>, firstKey k0: Int,
        width tk: Int,
        lse: UnsafePointer<Float>
    ) {
        for i in rows {
            let cols = visible(s, b, i, firstKey: k0), row = x + (i - rows.lowerBound) * tk, l = lse[i]
            for j in cols { row[j] = FastMath.exp(row[j] - l) }
            zeroOutside(cols, row: row, width: tk)
        }
    }

    /// dp ← p ⊙ (dp − Σⱼ p·dp), row by row.
    private static func softmaxBackwardRows(
        _ p: UnsafePointer<Float>, _ dp: UnsafeMutablePointer<Float>, _ s: AttentionShape, _ b: Int, rows: Range<Int>,
        firstKey k0: Int, width tk: Int
    ) {
        for i in rows {
            let r = i - rows.lowerBound, cols = visible(s, b, i, firstKey: k0)
            let pr = p + r * tk, dr = dp + r * tk
            let c = Vector.dot(pr + cols.lowerBound, dr + cols.lowerBound, cols.count)
            for j in cols { dr[j] = pr[j] * (dr[j] - c) }
            zeroOutside(cols, row: dr, width: tk)
        }
    }

    private static func zeroOutside(_ cols: Range<Int>, row: UnsafeMutablePointer<Float>, width: Int) {
        for j in 0..<cols.lowerBound { row[j] = 0 }
        for j in cols.upperBound..<width { row[j] = 0 }
    }
}
