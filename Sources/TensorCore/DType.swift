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
        let rounded = (bits &+ 0x7FFF &+ ((bits &>> 16) & 1)) &>> 16, quiet = (bits &>> 16) | 0x0040
        // Integer NaN test and a select, no branch: conversion loops vectorise.
        return UInt16(truncatingIfNeeded: bits & 0x7FFF_FFFF > 0x7F80_0000 ? quiet : rounded)
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
                stochasticBF16(src, dst, r, rng: rng, stream: stream, offset: offset)
            }
        }
    }

    /// `count` values of `source` to bf16 bits (nearest even) in `destination`, in parallel.
    public static func toBF16(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<UInt16>, count: Int) {
        toBF16(
            UnsafeBufferPointer(start: source, count: count),
            UnsafeMutableBufferPointer(start: destination, count: count))
    }

    /// `count` bf16 values of `source` widened to fp32 in `destination`, in parallel.
    public static func fromBF16(_ source: UnsafePointer<UInt16>, _ destination: UnsafeMutablePointer<Float>, count: Int)
    {
        fromBF16(
            UnsafeBufferPointer(start: source, count: count),
            UnsafeMutableBufferPointer(start: destination, count: count))
    }

    /// Stochastic bf16 rounding of elements `range`. Element e = offset + i takes its random word from the
    /// 64-element tile e / 64, whose 64 words are one ``Philox/blocks16(stream:block0:)`` call (blocks 16·tile …):
    /// position p = e % 64 reads vector (p % 32) / 8 of group p / 32, lane p % 8. One generator call per 64
    /// values, and the result depends only on (seed, stream, e), not on how the work is split.
    static func stochasticBF16(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ range: Range<Int>,
        rng: Philox, stream: UInt64, offset: UInt64
    ) {
        var words = (
            SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>(),
            SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>(), SIMD8<UInt32>()
        )
        var i = range.lowerBound
        while i < range.upperBound {
            let e = offset &+ UInt64(i), tile = e / 64, first = Int(e % 64)
            let (g0, g1) = rng.blocks16(stream: stream, block0: tile &* 16)
            words = (g0.0, g0.1, g0.2, g0.3, g1.0, g1.1, g1.2, g1.3)
            let count = min(64 - first, range.upperBound - i)
            withUnsafeBytes(of: &words) { raw in
                let w = raw.bindMemory(to: UInt32.self)
                for p in first..<(first + count) {
                    let j = i + p - first
                    dst[j] = bf16Stochastic(src[j], random: w[p])
                }
            }
            i += count
        }
    }

    /// Converts bf16 bits to fp32, in parallel.
    public static func fromBF16(_ source: UnsafeBufferPointer<UInt16>, _ destination: UnsafeMutableBufferPointer<Float>)
    {
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
    public static func fromF16(_ source: UnsafeBufferPointer<UInt16>, _ destination: UnsafeMutableBufferPointer<Float>)
    {
        precondition(source.count == destination.count, "fromF16: counts differ")
        guard let s = source.baseAddress, let d = destination.baseAddress else { return }
        nonisolated(unsafe) let (src, dst) = (s, d)  // chunks are disjoint
        Parallel.forEachChunk(source.count, grain: 1 << 16) { r in
            for i in r { dst[i] = Float(Float16(bitPattern: src[i])) }
        }
    }
}
