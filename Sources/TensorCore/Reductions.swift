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

    /// The number of NaN and infinite values (exponent bits all ones), branch-free so that it vectorises.
    @inlinable
    public static func nonFiniteCount(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        var count = 0
        for i in 0..<n { count &+= Int((x[i].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0) }
        return count
    }

    /// max xᵢ (−∞ for n = 0).
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity
        for i in 0..<n { m = x[i] > m ? x[i] : m }
        return m
    }

    /// x *= a, in parallel.
    public static func scale(_ x: UnsafeMutablePointer<Float>, count n: Int, by a: Float) {
        nonisolated(unsafe) let x = x  // tasks own disjoint elements
        Parallel.forEachChunk(n, grain: 1 << 16) { r in for i in r { x[i] *= a } }
    }
}
