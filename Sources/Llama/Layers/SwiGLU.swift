import TensorCore

/// h = SiLU(g) ⊙ u, the gated MLP activation.
public enum SwiGLU {
    /// g, u, h: [count]. Parallel.
    public static func forward(
        gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, _ h: UnsafeMutablePointer<Float>, count: Int
    ) {
        nonisolated(unsafe) let (g, u, h) = (g, u, h)  // disjoint chunks
        Parallel.forEachChunk(count, grain: 1 << 14) { r in
            for i in r { h[i] = FastMath.silu(g[i]) * u[i] }
        }
    }

    /// With σ = σ(g): du = dh·g·σ, dg = dh·u·σ·(1 + g·(1 − σ)). Writes (does not accumulate).
    /// `dg` and `du` must not overlap the inputs: with overlap the loop does not vectorise.
    public static func backward(
        _ dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
        dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>, count: Int
    ) {
        nonisolated(unsafe) let (dh, g, u, dg, du) = (dh, g, u, dg, du)  // disjoint chunks
        Parallel.forEachChunk(count, grain: 1 << 14) { r in
            for i in r {
                let s = FastMath.sigmoid(g[i]), d = dh[i]
                du[i] = d * g[i] * s
                dg[i] = d * u[i] * s * (1 + g[i] * (1 - s))
            }
        }
    }
}
