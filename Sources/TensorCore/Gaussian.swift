/// Standard normals from Philox blocks, eight blocks at a time in SIMD lanes (Box–Muller with polynomial
/// log, sin and cos, ≈ 1e-7 relative error), so that zeroth-order methods can regenerate a perturbation
/// inside their update loops at a few nanoseconds per value instead of storing it.
extension Philox {
    /// Philox4x32-10 of blocks `block0 ..< block0 + 16` as two groups of eight: output word w of block
    /// block0 + 8g + j is lane j of vector w of group g. The groups' rounds are independent chains in one
    /// loop, so their multiplies overlap (one group alone is latency-bound).
    @inlinable
    public func blocks16(stream: UInt64, block0: UInt64) -> (
        (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>), (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>)
    ) {
        let lanesA = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7) &+ block0, lanesB = lanesA &+ 8
        var a0 = SIMD8<UInt32>(truncatingIfNeeded: lanesA), a1 = SIMD8<UInt32>(truncatingIfNeeded: lanesA &>> 32)
        var b0 = SIMD8<UInt32>(truncatingIfNeeded: lanesB), b1 = SIMD8<UInt32>(truncatingIfNeeded: lanesB &>> 32)
        var a2 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream))
        var a3 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream &>> 32))
        var (b2, b3) = (a2, a3)
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed &>> 32)
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let pa0 = SIMD8<UInt64>(truncatingIfNeeded: a0) &* 0xD251_1F53, pb0 = SIMD8<UInt64>(truncatingIfNeeded: b0) &* 0xD251_1F53
            let pa1 = SIMD8<UInt64>(truncatingIfNeeded: a2) &* 0xCD9E_8D57, pb1 = SIMD8<UInt64>(truncatingIfNeeded: b2) &* 0xCD9E_8D57
            (a0, a1, a2, a3) = (SIMD8<UInt32>(truncatingIfNeeded: pa1 &>> 32) ^ a1 ^ k0, SIMD8<UInt32>(truncatingIfNeeded: pa1),
                                SIMD8<UInt32>(truncatingIfNeeded: pa0 &>> 32) ^ a3 ^ k1, SIMD8<UInt32>(truncatingIfNeeded: pa0))
            (b0, b1, b2, b3) = (SIMD8<UInt32>(truncatingIfNeeded: pb1 &>> 32) ^ b1 ^ k0, SIMD8<UInt32>(truncatingIfNeeded: pb1),
                                SIMD8<UInt32>(truncatingIfNeeded: pb0 &>> 32) ^ b3 ^ k1, SIMD8<UInt32>(truncatingIfNeeded: pb0))
        }
        return ((a0, a1, a2, a3), (b0, b1, b2, b3))
    }

    /// Normals per tile of ``normals256(stream:tile:scratch:into:)``.
    public static let tileSize = 256

    /// The 256 standard normals of tile `tile` (indices 256·tile ..< 256·tile + 256) into `out[0 ..< 256]`,
    /// using `scratch[0 ..< 256]`. Index 256t + 64w + i is output w of block 64t + i: w = 0, 1 from
    /// Box–Muller on the block's words (0, 1), w = 2, 3 from words (2, 3). Words go to four contiguous
    /// arrays first, so that Box–Muller is one loop of 64 over plain arrays, which the compiler vectorises.
    @inlinable
    public func normals256(stream: UInt64, tile: UInt64, scratch: UnsafeMutablePointer<UInt32>, into out: UnsafeMutablePointer<Float>) {
        scratch.withMemoryRebound(to: SIMD8<UInt32>.self, capacity: 32) { v in
            for g in stride(from: 0, to: 8, by: 2) {
                let (a, b) = blocks16(stream: stream, block0: tile &* 64 &+ UInt64(g) &* 8)
                (v[g], v[8 + g], v[16 + g], v[24 + g]) = a
                (v[g + 1], v[9 + g], v[17 + g], v[25 + g]) = b
            }
        }
        Self.boxMuller(words: scratch, into: out)
    }

    /// out[w·64 + i] from Box–Muller on (words[i], words[64 + i]) for w = 0, 1 and on (words[128 + i],
    /// words[192 + i]) for w = 2, 3.
    @inlinable
    static func boxMuller(words: UnsafePointer<UInt32>, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<64 {
            let (a0, a1) = boxMuller(words[i], words[64 + i]), (b0, b1) = boxMuller(words[128 + i], words[192 + i])
            out[i] = a0
            out[64 + i] = a1
            out[128 + i] = b0
            out[192 + i] = b1
        }
    }

    /// Calls `body(range, z)` over `range` in tiles, z[k] being the normal at index `range.lowerBound + k`
    /// of `stream`; a tile of normals (1 KiB) lives on the stack only while `body` uses it. Single-threaded:
    /// callers split work into ranges.
    @inlinable
    public func withNormals(stream: UInt64, range: Range<Int>, _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * Self.tileSize) { buffer in
            let t = buffer.baseAddress!
            t.advanced(by: Self.tileSize).withMemoryRebound(to: UInt32.self, capacity: Self.tileSize) { scratch in
                var start = range.lowerBound
                while start < range.upperBound {
                    let tile = start / Self.tileSize, first = tile * Self.tileSize, end = min(range.upperBound, first + Self.tileSize)
                    normals256(stream: stream, tile: UInt64(tile), scratch: scratch, into: t)
                    body(start..<end, t + (start - first))
                    start = end
                }
            }
        }
    }

    /// Box–Muller on a pair of 32-bit words: u1 = (x ≫ 8 + 1)·2⁻²⁴ ∈ (0, 1], u2 = (y ≫ 8)·2⁻²⁴ ∈ [0, 1);
    /// returns (r cos 2πu2, r sin 2πu2) with r = √(−2 ln u1). Branch-free (integer masks), so loops of it vectorise.
    @inlinable @inline(__always)
    public static func boxMuller(_ x: UInt32, _ y: UInt32) -> (Float, Float) {
        let u1 = Float(Int32(truncatingIfNeeded: (x &>> 8) &+ 1)) * 0x1p-24
        let r = (-2 * logUnit(u1)).squareRoot()
        let (c, s) = sinCosTurn(y &>> 8)
        return (r * c, r * s)
    }

    /// ln u for u in (0, 1] (Cephes logf: u = m·2ᵉ with m in [√½, √2), a degree-8 polynomial in m − 1).
    @inlinable @inline(__always)
    static func logUnit(_ u: Float) -> Float {
        let bits = Int32(bitPattern: u.bitPattern)
        let mantissa = (bits & 0x007F_FFFF) | 0x3F00_0000                     // m in [0.5, 1)
        let small = (mantissa &- 0x3F35_04F3) &>> 31                          // −1 where m < √½, else 0
        let e = Float((bits &>> 23) &- 126 &+ small)
        let m0 = Float(bitPattern: UInt32(bitPattern: mantissa))
        let m = m0 + Float(bitPattern: UInt32(bitPattern: mantissa & small)) - 1  // 2m − 1 where small, else m − 1
        let z = m * m
        var p: Float = 7.0376836292e-2  // Horner with fused multiply-adds
        for c: Float in [-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                         2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1] {
            p = c.addingProduct(p, m)
        }
        let y = (-0.5 * z).addingProduct(p * m, z).addingProduct(-2.12194440e-4, e)
        return (m + y).addingProduct(0.693359375, e)
    }

    /// (cos 2πt, sin 2πt) for t = k·2⁻²⁴, k in [0, 2²⁴): the nearest quarter turn q = round(4t) from the
    /// integer k, then Cephes sinf/cosf on the rest (|angle| ≤ π/4), rotated by q quarter turns.
    @inlinable @inline(__always)
    static func sinCosTurn(_ k: UInt32) -> (Float, Float) {
        let q = Int32(truncatingIfNeeded: (k &+ (1 << 21)) &>> 22)  // 0 … 4
        let rest = Int32(truncatingIfNeeded: k) &- (q &<< 22)        // −2²¹ … 2²¹
        let a = Float(rest) * (0x1p-24 * 2 * Float.pi), z = a * a
        let s = a.addingProduct(Float(-1.6666654611e-1).addingProduct(Float(8.3321608736e-3).addingProduct(-1.9515295891e-4, z), z) * z, a)
        let c = Float(1).addingProduct(-0.5, z).addingProduct(
            Float(4.166664568298827e-2).addingProduct(Float(-1.388731625493765e-3).addingProduct(2.443315711809948e-5, z), z), z * z)
        // Odd q swaps sin and cos; the signs are flipped by xor on the sign bit.
        let swap = 0 &- (q & 1), ci = Int32(bitPattern: c.bitPattern), si = Int32(bitPattern: s.bitPattern)
        let cc = (ci & ~swap) | (si & swap), ss = (si & ~swap) | (ci & swap)
        return (Float(bitPattern: UInt32(bitPattern: cc ^ (((q &+ 1) & 2) &<< 30))),
                Float(bitPattern: UInt32(bitPattern: ss ^ ((q & 2) &<< 30))))
    }
}
