/// Element types a tensor can be stored in.
public enum DType: String, Sendable, Codable, CaseIterable {
    case f32, bf16, f16, i8, i32

    public var byteSize: Int {
        switch self {
        case .f32, .i32: 4
        case .bf16, .f16: 2
        case .i8: 1
        }
    }

    /// A floating-point type (what model weights are read from).
    public var isFloatingPoint: Bool { self == .f32 || self == .bf16 || self == .f16 }
}

/// How an fp32 value is rounded to a coarser grid (bf16, INT8 steps).
public enum Rounding: Sendable {
    /// To the nearest grid point (bf16: ties to even, what PyTorch's `.to(torch.bfloat16)` does).
    case nearest
    /// Up with probability equal to the dropped fraction, so the expected value is exact. Random bits come
    /// from `generator` at (`stream`, `offset + element index`), so the result does not depend on how the
    /// work is split.
    case stochastic(Philox, stream: UInt64, offset: UInt64)
}

/// Conversions between fp32 and the 16-bit storage types (bf16 and f16 are stored as `UInt16` bits).
public enum Conversions {
    /// bf16 bits of `x`, rounded to nearest even; NaN stays a (quiet) NaN.
    @inlinable
    public static func bf16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits &>> 16) | 0x0040 }
        let rounding = 0x7FFF &+ ((bits &>> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) &>> 16)
    }

    /// bf16 bits of `x` rounded stochastically with the random word `r` (its low 16 bits are used).
    @inlinable
    public static func bf16Stochastic(_ x: Float, random r: UInt32) -> UInt16 {
        let bits = x.bitPattern
        if !x.isFinite { return bf16(x) }
        return UInt16(truncatingIfNeeded: (bits &+ (r & 0xFFFF)) &>> 16)
    }

    @inlinable
    public static func float(bf16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) &<< 16)
    }

    /// Converts `source` to bf16 bits in `destination` (same count), in parallel.
    public static func toBF16(
        _ source: UnsafeBufferPointer<Float>, _ destination: UnsafeMutableBufferPointer<UInt16>,
        rounding: Rounding = .nearest
    ) {
        precondition(source.count == destination.count, "toBF16: counts differ")
        guard let s = source.baseAddress, let d = destination.baseAddress else { return }
        nonisolated(unsafe) let (src, dst) = (s, d)  // chunks are disjoint
        switch rounding {
        case .nearest:
            Parallel.forEachChunk(source.count, grain: 1 << 16) { r in
                for i in r { dst[i] = bf16(src[i]) }
            }
        case .stochastic(let rng, let stream, let offset):
            Parallel.forEachChunk(source.count, grain: 1 << 14) { r in
                for i in r {
                    dst[i] = bf16Stochastic(src[i], random: rng.bits(stream: stream, index: offset &+ UInt64(i)))
                }
            }
        }
    }

    /// Converts bf16 bits to fp32, in parallel.
    public static func fromBF16(_ source: UnsafeBufferPointer<UInt16>, _ destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count, "fromBF16: counts differ")
        guard let s = source.baseAddress, let d = destination.baseAddress else { return }
        nonisolated(unsafe) let (src, dst) = (s, d)  // chunks are disjoint
        Parallel.forEachChunk(source.count, grain: 1 << 16) { r in
            for i in r { dst[i] = float(bf16: src[i]) }
        }
    }

    /// Converts fp32 to IEEE half bits (round to nearest even), in parallel.
    public static func toF16(_ source: UnsafeBufferPointer<Float>, _ destination: UnsafeMutableBufferPointer<UInt16>) {
        precondition(source.count == destination.count, "toF16: counts differ")
        guard let s = source.baseAddress, let d = destination.baseAddress else { return }
        nonisolated(unsafe) let (src, dst) = (s, d)  // chunks are disjoint
        Parallel.forEachChunk(source.count, grain: 1 << 16) { r in
            for i in r { dst[i] = Float16(src[i]).bitPattern }
        }
    }

    /// Converts IEEE half bits to fp32, in parallel.
    public static func fromF16(_ source: UnsafeBufferPointer<UInt16>, _ destination: UnsafeMutableBufferPointer<Float>) {
        precondition(source.count == destination.count, "fromF16: counts differ")
        guard let s = source.baseAddress, let d = destination.baseAddress else { return }
        nonisolated(unsafe) let (src, dst) = (s, d)  // chunks are disjoint
        Parallel.forEachChunk(source.count, grain: 1 << 16) { r in
            for i in r { dst[i] = Float(Float16(bitPattern: src[i])) }
        }
    }
}
