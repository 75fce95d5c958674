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
        Parallel.forEachChunk(blocks, grain: max(1, (1 << 15) / blockSize)) { range in
            for b in range {
                let start = b * blockSize, n = min(blockSize, count - start)
                let s = scale(x + start, n)
                scales[b] = s
                let inverse: Float = s > 0 ? 1 / s : 0
                switch rounding {
                case .nearest:
                    for i in 0..<n { q[start + i] = toInt8(x[start + i] * inverse + 0.5) }
                case .stochastic(let rng, let stream, let offset):
                    rng.withUniforms16(stream: stream, range: Int(offset) + start..<Int(offset) + start + n) { r, u in
                        let base = r.lowerBound - Int(offset)
                        for k in 0..<r.count {  // floor(x/s + u), u ∈ (0, 1): up with probability frac(x/s)
                            q[base + k] = toInt8(x[base + k] * inverse + (Float(u[k]) + 0.5) * 0x1p-16)
                        }
                    }
                }
            }
        }
    }

    /// x̂ = q · s for `count` values, in parallel.
    public static func dequantize(
        _ q: UnsafePointer<Int8>, scales: UnsafePointer<Float>, count: Int, blockSize: Int, into x: UnsafeMutablePointer<Float>
    ) {
        nonisolated(unsafe) let (x, q, scales) = (x, q, scales)
        Parallel.forEachChunk(blockCount(count, blockSize: blockSize), grain: max(1, (1 << 16) / blockSize)) { range in
            for b in range {
                let start = b * blockSize, n = min(blockSize, count - start), s = scales[b]
                for i in start..<start + n { x[i] = Float(q[i]) * s }
            }
        }
    }

    /// max|x| / 127 over n values; NaN when a value is not finite.
    @inlinable
    static func scale(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var m: Float = 0
        for i in 0..<n { m = max(m, abs(x[i])) }  // max() drops NaN: check finiteness on the sum below
        var sum: Float = 0
        for i in 0..<n { sum += x[i] * 0 }  // NaN or inf × 0 = NaN, finite × 0 = 0
        return sum == 0 && m.isFinite ? m / 127 : .nan
    }

    /// ⌊v⌋ clamped to [−127, 127]; NaN becomes 0 (its block's scale is NaN).
    @inlinable @inline(__always)
    static func toInt8(_ v: Float) -> Int8 {
        let f = min(max(v.rounded(.down), -127), 127)
        return Int8(truncatingIfNeeded: Int32(f.isNaN ? 0 : f))
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
