import RealModule

/// Reductions and vector updates over contiguous fp32 arrays. `Relaxed` arithmetic licenses
/// reassociation so the loops vectorise; results therefore vary in the last bits with the
/// compiler's choices, never with the thread count (each reduction is single-threaded).
public enum Vector {
    /// Σ xᵢ².
    @inlinable
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s = Relaxed.multiplyAdd(x[i], x[i], s) }
        return s
    }

    /// Σ xᵢ·yᵢ.
    @inlinable
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
        var s: Float = 0
        for i in 0..<n { s = Relaxed.multiplyAdd(x[i], y[i], s) }
        return s
    }

    /// max xᵢ (−∞ for n = 0).
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n { m = x[i] > m ? x[i] : m }
        return m
    }

    /// y += a·x, in parallel.
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        nonisolated(unsafe) let (x, y) = (x, y)  // chunks are disjoint
        Parallel.forEachChunk(n, grain: 1 << 15) { r in
            for i in r { y[i] = Relaxed.multiplyAdd(a, x[i], y[i]) }
        }
    }

    /// Σ xᵢ² over a large array, in parallel (partial sums per chunk, added in chunk order).
    public static func parallelSumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Double {
        let chunks = Swift.max(1, Swift.min(64, n / (1 << 16)))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { p in
            nonisolated(unsafe) let (x, p) = (x, p.baseAddress!)  // one slot per chunk
            Parallel.forEachChunk(chunks, grain: 1) { r in
                for c in r {
                    let lo = n * c / chunks, hi = n * (c + 1) / chunks
                    p[c] = Double(sumOfSquares(x + lo, hi - lo))
                }
            }
        }
        return partial.reduce(0, +)
    }
}
