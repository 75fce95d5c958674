import RealModule

/// Philox4x32-10, a counter-based generator (Salmon et al., SC'11): the value at
/// (seed, stream, index) is a pure function, so a perturbation can be regenerated in any order, in
/// parallel, with any thread count, and nothing but the seed is ever stored.
///
/// Index `i` maps to counter block `i / 4`, lane `i % 4`; the counter is (block lo, block hi,
/// stream lo, stream hi) and the key is the 64-bit seed.
public struct Philox: Sendable, Hashable, Codable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// The four 32-bit outputs of counter block `block` in `stream`.
    @inlinable
    public func block(stream: UInt64, block: UInt64) -> SIMD4<UInt32> {
        var c0 = UInt32(truncatingIfNeeded: block), c1 = UInt32(truncatingIfNeeded: block &>> 32)
        var c2 = UInt32(truncatingIfNeeded: stream), c3 = UInt32(truncatingIfNeeded: stream &>> 32)
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed &>> 32)
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 &>> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 &>> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return SIMD4(c0, c1, c2, c3)
    }

    /// The raw 32-bit value at `index`.
    @inlinable
    public func bits(stream: UInt64, index: UInt64) -> UInt32 {
        block(stream: stream, block: index &>> 2)[Int(truncatingIfNeeded: index & 3)]
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public func uniform(stream: UInt64, index: UInt64) -> Float {
        Self.unitInterval(bits(stream: stream, index: index))
    }

    /// Standard normal at `index`: in tile t = index / 256, position i = index mod 128 of the tile is word
    /// i / 32 of block 32t + i mod 32, whose Box–Muller pair gives positions i and 128 + i
    /// (see ``normals256(stream:tile:scratch:into:)``).
    @inlinable
    public func normal(stream: UInt64, index: UInt64) -> Float {
        let i = index & 127, x = block(stream: stream, block: (index &>> 8) &* 32 &+ (i & 31))
        let (c, s) = Self.boxMuller(x[Int(i &>> 5)])
        return index & 128 == 0 ? c : s
    }

    /// Fills `out[j]` with the uniform at index `offset + j`, in parallel.
    public func fillUniform(_ out: UnsafeMutableBufferPointer<Float>, stream: UInt64, offset: UInt64 = 0) {
        fill(out, stream: stream, offset: offset) { SIMD4<Float>($0 &>> 8) * 0x1p-24 }
    }

    /// Fills `out[j]` with `scale ×` the standard normal at index `offset + j`, in parallel.
    public func fillNormal(
        _ out: UnsafeMutableBufferPointer<Float>, stream: UInt64, offset: UInt64 = 0, scale: Float = 1
    ) {
        guard let base = out.baseAddress else { return }
        Parallel.forEachChunk(out.count, grain: 1 << 14) { range in
            withNormals(stream: stream, range: Int(offset) + range.lowerBound..<Int(offset) + range.upperBound) {
                r, z in
                for k in 0..<r.count { base[r.lowerBound - Int(offset) + k] = scale * z[k] }
            }
        }
    }

    private func fill(
        _ out: UnsafeMutableBufferPointer<Float>, stream: UInt64, offset: UInt64,
        _ transform: (SIMD4<UInt32>) -> SIMD4<Float>
    ) {
        guard let base = out.baseAddress else { return }
        Parallel.forEachChunk(out.count, grain: 1 << 14) { range in
            var j = range.lowerBound
            while j < range.upperBound {
                let index = offset &+ UInt64(j)
                let values = transform(block(stream: stream, block: index &>> 2))
                var lane = Int(index & 3)
                while lane < 4 && j < range.upperBound {
                    base[j] = values[lane]
                    lane += 1
                    j += 1
                }
            }
        }
    }

    /// [0, 1) from the top 24 bits.
    @inlinable
    public static func unitInterval(_ x: UInt32) -> Float {
        Float(x &>> 8) * 0x1p-24
    }
}
