import TensorCore

/// h = act(g) ⊙ u, the gated MLP's activation: SiLU (SwiGLU, Llama) or tanh-approximated GELU (GeGLU, Gemma).
public enum GatedActivation: Sendable {
    case silu, geluTanh

    /// g, u, h: [count]. Parallel.
    public func forward(
        gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>, _ h: UnsafeMutablePointer<Float>, count: Int
    ) {
        nonisolated(unsafe) let (g, u, h) = (g, u, h)  // disjoint chunks
        let gelu = self == .geluTanh
        Parallel.forEachChunk(count, grain: 1 << 14) { r in
            if gelu {
                for i in r { h[i] = Self.gelu(g[i]).value * u[i] }
            } else {
                for i in r { h[i] = FastMath.silu(g[i]) * u[i] }
            }
        }
    }

    /// du = dh·act(g), dg = dh·u·act′(g); for SiLU with σ = σ(g), act′ = σ·(1 + g·(1 − σ)). Writes (does not
    /// accumulate). `dg` and `du` must not overlap the inputs: with overlap the loop does not vectorise.
    public func backward(
        _ dh: UnsafePointer<Float>, gate g: UnsafePointer<Float>, up u: UnsafePointer<Float>,
        dGate dg: UnsafeMutablePointer<Float>, dUp du: UnsafeMutablePointer<Float>, count: Int
    ) {
        nonisolated(unsafe) let (dh, g, u, dg, du) = (dh, g, u, dg, du)  // disjoint chunks
        let gelu = self == .geluTanh
        Parallel.forEachChunk(count, grain: 1 << 14) { r in
            if gelu {
                for i in r {
                    let (value, slope) = Self.gelu(g[i]), d = dh[i]
                    du[i] = d * value
                    dg[i] = d * u[i] * slope
                }
            } else {
                for i in r {
                    let s = FastMath.sigmoid(g[i]), d = dh[i]
                    du[i] = d * g[i] * s
                    dg[i] = d * u[i] * s * (1 + g[i] * (1 - s))
                }
            }
        }
    }

    /// GELU(x) ≈ x/2·(1 + tanh(k·(x + a·x³))), k = √(2/π), a = 0.044715 (PyTorch's approximate="tanh"), and its
    /// derivative 1/2·(1 + t) + x/2·(1 − t²)·k·(1 + 3a·x²).
    @inline(__always)
    static func gelu(_ x: Float) -> (value: Float, slope: Float) {
        let k: Float = 0.797_884_56, a: Float = 0.044_715
        let t = FastMath.tanh(k * (x + a * x * x * x))
        return (0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * a * x * x))
    }
}
