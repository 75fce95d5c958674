/// Symmetric INT8 quantization in blocks of consecutive values. Block b of a tensor stores
/// q = round(x / s) ∈ [−127, 127] with one fp32 scale s = max|x| / 127 over the block, and reads back
/// x̂ = q · s. Nearest rounding errs by at most s / 2 per value; stochastic rounding errs by less than s
/// but is exact in expectation, which is what lets updates far smaller than s accumulate.
///
/// A block of zeros has s = 0; a block holding a non-finite value gets s = NaN, so the damage shows up
/// as a non-finite loss instead of a silently clipped weight.
public enum Int8Blocks {
    /// Blocks of `blockSize` values that cover `count` values (the last may be shorter).
    @inlinable
    public static func blockCount(_ count: Int, blockSize: Int) -> Int { (count + blockSize - 1) / blockSize }

    /// Quantizes `x[0 ..< count]` into `q` and one scale per block into `scales`, in parallel. With
    /// stochastic rounding, value i uses the random bits at index `offset + i`.
    public static func quantize(
        _ x: UnsafePointer<Float>, count: Int, blockSize: Int, into q: UnsafeMutablePointer<Int8>,
        scales: UnsafeMutablePointer<Float>, rounding: Rounding
    ) {
        nonisolated(unsafe) let (x, q, scales) = (x, q, scales)  // tasks own disjoint blocks
        let blocks = blockCount(count, blockSize: blockSize)
        let slice = max(1, (1 << 13) / blockSize)  // blocks per cache-resident slice: scales, then values
        Parallel.forEachChunk(blocks, grain: max(1, (1 << 15) / blockSize)) { range in
            for first in stride(from: range.lowerBound, to: range.upperBound, by: slice) {
                let last = min(range.upperBound, first + slice)
                for b in first..<last { scales[b] = scale(x + b * blockSize, min(blockSize, count - b * blockSize)) }
                encode(first * blockSize, min(last * blockSize, count))
            }
            /// Values lo ..< hi (whole blocks, scales known).
            func encode(_ lo: Int, _ hi: Int) {
                switch rounding {
                case .nearest:
                    var i = lo
                    while i < hi {
                        let b = i / blockSize, next = min(hi, (b + 1) * blockSize)
                        encode(i, next, b, nil)
                        i = next
                    }
                case .stochastic(let rng, let stream, let offset):
                    // each tile once
                    rng.withUniforms16(stream: stream, range: Int(offset) + lo..<Int(offset) + hi) { r, u in
                        var i = r.lowerBound - Int(offset)
                        let first = i, end = r.upperBound - Int(offset)
                        while i < end {  // the tile's pieces in each block
                            let b = i / blockSize, next = min(end, (b + 1) * blockSize)
                            encode(i, next, b, u + (i - first))
                            i = next
                        }
                    }
                }
            }
            /// Values lo ..< hi, all in block b, with the uniform of value i at u[i − lo] (nil: nearest rounding).
            func encode(_ lo: Int, _ hi: Int, _ b: Int, _ u: UnsafePointer<UInt16>?) {
                let s = scales[b], inverse: Float = s > 0 ? 1 / s : 0
                let (xs, qs) = (x + lo, q + lo)  // plain pointers: no index overflow checks, so the loops vectorise
                if let u {  // floor(x/s + u), u ∈ (0, 1): up with probability frac(x/s)
                    for i in 0..<hi - lo { qs[i] = toInt8(xs[i] * inverse + (Float(u[i]) + 0.5) * 0x1p-16) }
                } else {
                    for i in 0..<hi - lo { qs[i] = toInt8(xs[i] * inverse + 0.5) }
                }
            }
        }
    }

    /// x̂ = q · s for `count` values, in parallel.
    public static func dequantize(
        _ q: UnsafePointer<Int8>, scales: UnsafePointer<Float>, count: Int, blockSize: Int,
        into x: UnsafeMutablePointer<Float>
    ) {
        nonisolated(unsafe) let (x, q, scales) = (x, q, scales)
        Parallel.forEachChunk(blockCount(count, blockSize: blockSize), grain: max(1, (1 << 16) / blockSize)) { range in
            for b in range {
                let start = b * blockSize, n = min(blockSize, count - start), s = scales[b],
                    (xs, qs) = (x + start, q + start)
                for i in 0..<n { xs[i] = Float(qs[i]) * s }
            }
        }
    }

    /// max|x| / 127 over n values; NaN when a value is not finite (inf or NaN × 0 is NaN, a finite value × 0 is 0).
    /// Eight lanes at a time: the scalar max/select reduction does not vectorise.
    @inlinable
    static func scale(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m = SIMD8<Float>(repeating: 0), zero = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            let a = unsafeBitCast(unsafeBitCast(v, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)  // |v|
            m.replace(with: a, where: a .> m)
            zero += v * 0
            i += 8
        }
        var top = m.max(), check = zero.sum()
        while i < n {
            top = Swift.max(top, abs(x[i]))
            check += x[i] * 0
            i += 1
        }
        return check == 0 && top.isFinite ? top / 127 : .nan
    }

    /// ⌊v⌋ clamped to [−127, 127], branch-free so that loops of it vectorise: adding 1.5·2²³ rounds to an integer
    /// held in the low mantissa bits, whose low byte is the two's-complement INT8. (NaN gives an arbitrary value; its
    /// block's scale is NaN.)
    @inlinable @inline(__always)
    static func toInt8(_ v: Float) -> Int8 {
        let magic: Float = 12_582_912
        let c = Swift.min(Swift.max(v, -127), 127)
        let r = (c + magic) - magic  // nearest integer
        let f = r > c ? r - 1 : r  // floor
        return Int8(truncatingIfNeeded: (f + magic).bitPattern)
    }
}

extension Philox {
    /// Calls `body(range, u)` over `range` in tiles of 128, u[k] being 16 random bits for index
    /// `range.lowerBound + k` of `stream`: tile t is the 64 words of blocks 16t ..< 16t + 16 read as 128
    /// half-words (in ``blocks16(stream:block0:)`` order). Single-threaded: callers split work into ranges.
    @inlinable
    public func withUniforms16(stream: UInt64, range: Range<Int>, _ body: (Range<Int>, UnsafePointer<UInt16>) -> Void) {
        withUnsafeTemporaryAllocation(of: SIMD8<UInt32>.self, capacity: 8) { v in
            let halves = UnsafeRawPointer(v.baseAddress!).assumingMemoryBound(to: UInt16.self)
            var start = range.lowerBound
            while start < range.upperBound {
                let tile = start / 128, first = tile * 128, end = min(range.upperBound, first + 128)
                let (a, b) = blocks16(stream: stream, block0: UInt64(tile) &* 16)
                (v[0], v[1], v[2], v[3]) = a
                (v[4], v[5], v[6], v[7]) = b
                body(start..<end, halves + (start - first))
                start = end
            }
        }
    }
}
