import TensorCore

/// Soft-capping (Gemma 2): x ← c·tanh(x/c), which bounds scores and logits to (−c, c) smoothly.
public enum Softcap {
    /// Caps x [count] in place; writes the derivative 1 − tanh²(x/c) into `slope` when given.
    public static func apply(
        _ x: UnsafeMutablePointer<Float>, count: Int, cap c: Float, slope: UnsafeMutablePointer<Float>? = nil
    ) {
        let inverse = 1 / c
        if let slope {
            for j in 0..<count {
                let t = FastMath.tanh(x[j] * inverse)
                (x[j], slope[j]) = (c * t, 1 - t * t)
            }
        } else {
            for j in 0..<count { x[j] = c * FastMath.tanh(x[j] * inverse) }
        }
    }
}
