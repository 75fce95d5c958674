import TensorCore

/// A perturbation of the weights as a model reads them: tensor `id` reads w + scale·z, z the standard normals
/// of stream `stream(id)` of `rng` at each element's index in the tensor (the same z an in-place
/// perturbation of that stream adds). Tensors for which `stream` is nil are read as stored.
public struct WeightPerturbation {
    public let rng: Philox
    public let scale: Float
    public let stream: (ParameterID) -> UInt64?

    public init(rng: Philox, scale: Float, stream: @escaping (ParameterID) -> UInt64?) {
        self.rng = rng
        self.scale = scale
        self.stream = stream
    }

    /// Calls `body(range, z)` over chunks covering `0..<count` in parallel, z holding the normals of `range`.
    func forEachTile(_ count: Int, stream: UInt64, _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        let rng = rng
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body  // chunks are disjoint
            Parallel.forEachChunk(count, grain: 1 << 15) { chunk in
                rng.withNormals(stream: stream, range: chunk) { r, z in body(r, z) }
            }
        }
    }
}

extension LlamaModel {
    /// Parameter `id` as fp32 (w + scale·z when the perturbation names it).
    func withFloats<R>(_ id: ParameterID, _ body: (UnsafePointer<Float>) -> R) -> R {
        store.withFloats(id) { w in
            guard let p = perturbation, let stream = p.stream(id) else { return body(w.baseAddress!) }
            if perturbedFloats.map({ $0.count < w.count }) ?? true {
                perturbedFloats = nil
                perturbedFloats = AlignedBuffer(count: w.count, category: .workspace, ledger: ledger)
            }
            nonisolated(unsafe) let (src, out) = (w.baseAddress!, perturbedFloats!.pointer)
            let s = p.scale
            p.forEachTile(w.count, stream: stream) { r, z in
                let (a, o) = (src + r.lowerBound, out + r.lowerBound)
                for i in 0..<r.count { o[i] = a[i] + s * z[i] }
            }
            return body(out)
        }
    }

    /// Parameter `id` as a GEMM operand: bf16 bits when computing in bf16 (rounded to nearest even after the
    /// perturbation, when there is one), fp32 otherwise.
    func withWeight<R>(_ id: ParameterID, _ body: (GEMMOperand) -> R) -> R {
        guard let bf16 else { return withFloats(id) { body(.f32($0)) } }
        guard let p = perturbation, let stream = p.stream(id) else {
            return store.withBF16(id, workspace: bf16) { body(.bf16($0)) }
        }
        let count = layout.parameters[id].count
        nonisolated(unsafe) let out = bf16.buffer(.weights, count: count)
        let s = p.scale
        if let stored = store.storedBF16(id) {  // straight from the bits: no widened copy
            nonisolated(unsafe) let src = stored
            p.forEachTile(count, stream: stream) { r, z in
                let (a, o) = (src + r.lowerBound, out + r.lowerBound)
                for i in 0..<r.count { o[i] = Conversions.bf16(Conversions.float(bf16: a[i]) + s * z[i]) }
            }
            return body(.bf16(UnsafePointer(out)))
        }
        return store.withFloats(id) { w in
            nonisolated(unsafe) let src = w.baseAddress!
            p.forEachTile(count, stream: stream) { r, z in
                let (a, o) = (src + r.lowerBound, out + r.lowerBound)
                for i in 0..<r.count { o[i] = Conversions.bf16(a[i] + s * z[i]) }
            }
            return body(.bf16(UnsafePointer(out)))
        }
    }

    /// y [n, out] = x [n, in] · Wᵀ (+ y when `accumulate`); x from ``activation(_:count:)``.
    /// y[r, :] += b for each of `n` rows (no-op without a bias).
    func addBias(_ id: ParameterID?, to y: UnsafeMutablePointer<Float>, rows n: Int) {
        guard let id else { return }
        withFloats(id) { b in
            let width = layout.parameters[id].count
            for r in 0..<n {
                for j in 0..<width { y[r * width + j] += b[j] }
            }
        }
    }

    func project(
        _ id: ParameterID, _ x: GEMMOperand, rows n: Int, into y: UnsafeMutablePointer<Float>,
        accumulate: Bool = false
    ) {
        let shape = layout.parameters[id].shape
        withWeight(id) { w in
            multiply(
                m: n, n: shape[0], k: shape[1], x, lda: shape[1], w, ldb: shape[1], transB: true,
                y, ldc: shape[0], beta: accumulate ? 1 : 0)
        }
    }

    /// `count` activations as the A operand of the next GEMMs: as they are in fp32; in bf16 rounded once into
    /// the workspace's slot `.a`, valid until the next call (a GEMM rounds only its fp32 operands, B into slot `.b`),
    /// or into `keep`, where a layer keeps them for backward.
    func activation(_ x: UnsafePointer<Float>, count: Int, keep: UnsafeMutablePointer<UInt16>? = nil) -> GEMMOperand {
        guard let bf16 else { return .f32(x) }
        guard let keep else { return .bf16(bf16.rounded(x, count: count, slot: .a)) }
        Conversions.toBF16(x, keep, count: count)
        return .bf16(UnsafePointer(keep))
    }

    /// A GEMM in the model's precision (`a` and `b` fp32 unless computing in bf16).
    func multiply(
        m: Int, n: Int, k: Int, _ a: GEMMOperand, lda: Int, transA: Bool = false, _ b: GEMMOperand, ldb: Int,
        transB: Bool = false, _ c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0
    ) {
        GEMM.multiply(
            m: m, n: n, k: k, a, lda: lda, transA: transA, b, ldb: ldb, transB: transB, c, ldc: ldc,
            beta: beta, workspace: bf16)
    }

    /// x[n] = embedding[tokens[n]] (+ scale·z of those rows when the perturbation names the embedding: only the
    /// rows looked up are perturbed, never the whole table).
    func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        let d = config.dim
        if let bits = store.storedBF16(layout.embedding) {  // widen the rows looked up, not the table
            for (n, t) in tokens.enumerated() {
                let row = bits + Int(t) * d, out = x + n * d
                for i in 0..<d { out[i] = Conversions.float(bf16: row[i]) }
            }
        } else {
            store.withFloats(layout.embedding) { table in
                tokens.withUnsafeBufferPointer { Embedding.forward($0, table: table.baseAddress!, x, dim: d) }
            }
        }
        if let p = perturbation, let stream = p.stream(layout.embedding) {
            nonisolated(unsafe) let x = x
            let (rng, s) = (p.rng, p.scale)
            tokens.withUnsafeBufferPointer { t in
                nonisolated(unsafe) let t = t
                Parallel.forEachChunk(t.count, grain: 16) { rows in  // tasks own disjoint rows of x
                    for n in rows {
                        let row = Int(t[n]) * d
                        rng.withNormals(stream: stream, range: row..<(row + d)) { r, z in
                            let out = x + n * d + (r.lowerBound - row)
                            for i in 0..<r.count { out[i] += s * z[i] }
                        }
                    }
                }
            }
        }
        let scale = config.embeddingScale
        if scale != 1 { for i in 0..<tokens.count * d { x[i] *= scale } }
    }
}
