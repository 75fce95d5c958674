import TensorCore

/// One side of an LSP-Offload projector pair: a (d, r)-sparse matrix P (count×d) with exactly r nonzeros per row,
/// stored as the r sketch rows each original coordinate maps to (`indices`, distinct within a row) and their learned
/// `values`. The kernels never form P densely: applying it costs O(r) per coordinate instead of O(d).
public final class CountSketch {
    /// Original coordinates (rows of P), sketch size d and nonzeros per row r.
    public let count: Int, size: Int, nonzeros: Int
    public let indices: AlignedBuffer<Int32>
    public let values: AlignedBuffer<Float>

    /// Random sketch rows for each coordinate (r distinct of d) and values N(0, 1)/√r (LSP-Offload's "gaussian" init),
    /// from `generator` at `stream`.
    public init(
        count: Int, size d: Int, nonzeros r: Int, generator: Philox, stream: UInt64, ledger: MemoryLedger = .shared
    ) {
        precondition(r >= 1 && r <= d, "CountSketch: r = \(r) nonzeros of d = \(d)")
        (self.count, size, nonzeros) = (count, d, r)
        indices = AlignedBuffer(count: count * r, category: .optimizerState, ledger: ledger)
        values = AlignedBuffer(count: count * r, category: .optimizerState, ledger: ledger)
        generator.fillNormal(values.buffer, stream: stream, scale: 1 / Float(r).squareRoot())
        for i in 0..<count {  // r distinct rows by rejection (r ≪ d in practice)
            var k = 0, draw: UInt64 = 0
            while k < r {
                let candidate = Int32(generator.bits(stream: stream &+ 1, index: UInt64(i) &* 1024 &+ draw) % UInt32(d))
                draw += 1
                if !(0..<k).contains(where: { indices.pointer[i * r + $0] == candidate }) {
                    indices.pointer[i * r + k] = candidate
                    k += 1
                }
            }
        }
    }

    /// out (d×n) = Pᵀ·x for x (count×n), row-major. Tasks own column ranges (rows of out collide).
    public func transposeTimes(_ x: UnsafePointer<Float>, columns n: Int, into out: UnsafeMutablePointer<Float>) {
        nonisolated(unsafe) let (x, out, idx, val) = (x, out, indices.pointer, values.pointer)
        let (count, d, r) = (count, size, nonzeros)
        Parallel.forEachChunk(n, grain: 64) { cols in
            for a in 0..<d { (out + a * n + cols.lowerBound).update(repeating: 0, count: cols.count) }
            for i in 0..<count {
                let row = x + i * n
                for k in 0..<r {
                    let target = out + Int(idx[i * r + k]) * n, v = val[i * r + k]
                    for j in cols { target[j] += v * row[j] }
                }
            }
        }
    }

    /// out (rows×d) = x·P for x (rows×count), row-major. Tasks own blocks of 8 rows, which run as SIMD lanes: the
    /// block is transposed so that each coordinate's 8 values are one vector, scattered into a d×8 accumulator.
    public func rightTimes(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        nonisolated(unsafe) let (x, out, idx, val) = (x, out, indices.pointer, values.pointer)
        let (count, d, r) = (count, size, nonzeros)
        Parallel.forEachChunk((rows + 7) / 8, grain: 1) { blocks in
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: count + d) { scratch in
                let (xt, acc) = (scratch.baseAddress!, scratch.baseAddress! + count)
                for block in blocks {
                    let first = block * 8, lanes = min(8, rows - first)
                    for i in 0..<count {
                        var v = SIMD8<Float>()
                        for l in 0..<lanes { v[l] = x[(first + l) * count + i] }
                        xt[i] = v
                    }
                    acc.update(repeating: SIMD8(), count: d)
                    for i in 0..<count {
                        for k in 0..<r { acc[Int(idx[i * r + k])] += val[i * r + k] * xt[i] }
                    }
                    for l in 0..<lanes { for c in 0..<d { out[(first + l) * d + c] = acc[c][l] } }
                }
            }
        }
    }

    /// out (count×n) += α·P·y for y (d×n), row-major. Tasks own rows.
    public func times(
        _ y: UnsafePointer<Float>, columns n: Int, scale: Float = 1, into out: UnsafeMutablePointer<Float>
    ) {
        nonisolated(unsafe) let (y, out, idx, val) = (y, out, indices.pointer, values.pointer)
        let r = nonzeros
        Parallel.forEachChunk(count, grain: 16) { range in
            for i in range {
                let o = out + i * n
                for k in 0..<r {
                    let source = y + Int(idx[i * r + k]) * n, v = scale * val[i * r + k]
                    for j in 0..<n { o[j] += v * source[j] }
                }
            }
        }
    }

    /// out (rows×count) += α·x·Pᵀ for x (rows×d), row-major: out[a, i] += α·Σₖ value·x[a, index]. Tasks own blocks of
    /// 8 rows, gathered as SIMD lanes from the block transposed.
    public func timesTranspose(
        _ x: UnsafePointer<Float>, rows: Int, scale: Float = 1, into out: UnsafeMutablePointer<Float>
    ) {
        nonisolated(unsafe) let (x, out, idx, val) = (x, out, indices.pointer, values.pointer)
        let (count, d, r) = (count, size, nonzeros)
        Parallel.forEachChunk((rows + 7) / 8, grain: 1) { blocks in
            withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: d + count) { scratch in
                let (xt, sums) = (scratch.baseAddress!, scratch.baseAddress! + d)
                for block in blocks {
                    let first = block * 8, lanes = min(8, rows - first)
                    for c in 0..<d {
                        var v = SIMD8<Float>()
                        for l in 0..<lanes { v[l] = x[(first + l) * d + c] }
                        xt[c] = v
                    }
                    for i in 0..<count {
                        var s = SIMD8<Float>()
                        for k in 0..<r { s += val[i * r + k] * xt[Int(idx[i * r + k])] }
                        sums[i] = scale * s
                    }
                    for l in 0..<lanes { for i in 0..<count { out[(first + l) * count + i] += sums[i][l] } }
                }
            }
        }
    }
}

/// LSP-Offload's projector pair for a matrix W (m×n): P (m×d) and Q (n×d), both (d, r)-sparse. Gradients travel
/// compressed as Pᵀ·G·Q (d×d); steps come back as W += α·P·Δ·Qᵀ.
public struct SketchPair {
    public let left: CountSketch, right: CountSketch

    public init(left: CountSketch, right: CountSketch) {
        precondition(left.size == right.size, "SketchPair: both sides need the same d")
        (self.left, self.right) = (left, right)
    }

    public var size: Int { left.size }

    /// Ĝ (d×d) = Pᵀ·G·Q for G (m×n), through the d×n intermediate Pᵀ·G: O(r·m·n + r·n·d).
    public func compress(
        _ g: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, ledger: MemoryLedger = .shared
    ) {
        let t = AlignedBuffer<Float>(count: size * right.count, category: .workspace, ledger: ledger)
        left.transposeTimes(g, columns: right.count, into: t.pointer)
        right.rightTimes(t.pointer, rows: size, into: out)
    }

    /// W (m×n) += α·P·Δ·Qᵀ for Δ (d×d), through the m×d intermediate P·Δ: O(r·m·d + r·m·n).
    public func decompress(
        _ delta: UnsafePointer<Float>, scale: Float, into w: UnsafeMutablePointer<Float>, ledger: MemoryLedger = .shared
    ) {
        let u = AlignedBuffer<Float>(count: left.count * size, category: .workspace, ledger: ledger)
        left.times(delta, columns: size, into: u.pointer)
        right.timesTranspose(u.pointer, rows: left.count, scale: scale, into: w)
    }
}
