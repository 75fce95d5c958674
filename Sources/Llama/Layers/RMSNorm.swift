import RealModule
import TensorCore

/// y = (o + w) ⊙ x / √(mean(x²) + ε), row by row; the offset o is 0, or 1 for Gemma's norms.
public enum RMSNorm {
    /// x [N, D] → y [N, D]; writes rstd [N] = 1/√(mean(x²)+ε) when given. Parallel over rows.
    public static func forward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>?, rows n: Int, dim d: Int, epsilon: Float, offset o: Float = 0
    ) {
        nonisolated(unsafe) let (x, w, y, rstd) = (x, w, y, rstd)  // tasks own disjoint rows
        Parallel.forEachChunk(n, grain: max(1, 8192 / d)) { rows in
            for r in rows {
                let xr = x + r * d, yr = y + r * d
                let s = 1 / (Vector.sumOfSquares(xr, d) / Float(d) + epsilon).squareRoot()
                rstd?[r] = s
                for i in 0..<d { yr[i] = xr[i] * s * (o + w[i]) }
            }
        }
    }

    /// y = (o + w) ⊙ x·rstd from a saved rstd (recomputation during backward).
    public static func apply(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        _ y: UnsafeMutablePointer<Float>, rows n: Int, dim d: Int, offset o: Float = 0
    ) {
        nonisolated(unsafe) let (x, w, y, rstd) = (x, w, y, rstd)  // tasks own disjoint rows
        Parallel.forEachChunk(n, grain: max(1, 8192 / d)) { rows in
            for r in rows {
                let xr = x + r * d, yr = y + r * d, s = rstd[r]
                for i in 0..<d { yr[i] = xr[i] * s * (o + w[i]) }
            }
        }
    }

    /// With x̂ = x·rstd and g = dy ⊙ (o + w): dx += rstd·(g − x̂·mean(g ⊙ x̂)), dw += Σ_rows dy ⊙ x̂.
    /// dx rows are split across tasks; dw is split by columns, so the result does not depend on the
    /// thread count. Without `accumulate`, dx is overwritten instead, and may then be `dy` itself (in place).
    public static func backward(
        _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>,
        rows n: Int, dim d: Int, offset o: Float = 0, accumulate: Bool = true
    ) {
        nonisolated(unsafe) let (dy, x, w, rstd, dx, dw) = (dy, x, w, rstd, dx, dw)  // disjoint rows / columns
        // dw first: it reads dy, which the dx pass may overwrite
        Parallel.forEachChunk(d, grain: 64) { cols in
            for r in 0..<n {
                let dyr = dy + r * d, xr = x + r * d, s = rstd[r]
                for i in cols { dw[i] += dyr[i] * xr[i] * s }
            }
        }
        Parallel.forEachChunk(n, grain: max(1, 8192 / d)) { rows in
            for r in rows {
                let dyr = dy + r * d, xr = x + r * d, dxr = dx + r * d, s = rstd[r]
                var dot: Float = 0
                for i in 0..<d { dot = Relaxed.multiplyAdd(dyr[i] * (o + w[i]), xr[i], dot) }
                let c = dot * s * s / Float(d)
                if accumulate {
                    for i in 0..<d { dxr[i] += s * (dyr[i] * (o + w[i]) - xr[i] * c) }
                } else {
                    for i in 0..<d { dxr[i] = s * (dyr[i] * (o + w[i]) - xr[i] * c) }
                }
            }
        }
    }
}
