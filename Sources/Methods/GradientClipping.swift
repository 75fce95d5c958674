import Llama
import TensorCore

/// Global gradient-norm clipping over a full gradient slab, as `torch.nn.utils.clip_grad_norm_`:
/// ‖g‖ = √Σ g², and when ‖g‖ > max every gradient is multiplied by max / (‖g‖ + 1e-6).
public enum GradientClipping {
    /// The global L2 norm of `gradients` (accumulated in Double over parallel chunks, added in order).
    public static func norm(_ gradients: GradientSlab) -> Double {
        let slab = gradients.slab, chunks = max(1, min(64, slab.count / (1 << 16)))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { p in
            nonisolated(unsafe) let (x, out) = (slab.pointer, p.baseAddress!)  // one slot per chunk
            let n = slab.count
            Parallel.forEachChunk(chunks, grain: 1) { r in
                for c in r {
                    let lo = n * c / chunks, hi = n * (c + 1) / chunks
                    out[c] = Double(Vector.sumOfSquares(x + lo, hi - lo))
                }
            }
        }
        return partial.reduce(0, +).squareRoot()
    }

    /// Clips `gradients` to `maxNorm` and returns the norm before clipping (possibly non-finite).
    @discardableResult
    public static func clip(_ gradients: GradientSlab, maxNorm: Double) -> Double {
        let total = norm(gradients)
        let coefficient = maxNorm / (total + 1e-6)
        if total.isFinite, coefficient < 1 {
            Vector.scale(gradients.slab.pointer, count: gradients.slab.count, by: Float(coefficient))
        }
        return total
    }
}
