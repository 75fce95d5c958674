/// Standard normals from Philox blocks, eight blocks at a time in SIMD lanes (Box–Muller with polynomial
/// log, sin and cos, ≈ 1e-7 relative error), so that zeroth-order methods can regenerate a perturbation
/// inside their update loops at about a nanosecond per value instead of storing it.
///
/// Each 32-bit word gives one Box–Muller pair: the radius from its high 16 bits, the angle from its low
/// 16 (2¹⁶ radii and 2¹⁶ angles; |z| ≤ 4.85, E z² = 1 − 5e-6). That halves the Philox work per normal,
/// which is half the generator's time; the resolution is still finer than the fp16/bf16 perturbations
/// MeZO's reference code draws in the model's dtype.
extension Philox {
    /// Philox4x32-10 of blocks `block0 ..< block0 + 16` as two groups of eight: output word w of block
    /// block0 + 8g + j is lane j of vector w of group g. The groups' rounds are independent chains in one
    /// loop, so their multiplies overlap (one group alone is latency-bound).
    @inlinable
    public func blocks16(
        stream: UInt64, block0: UInt64
    ) -> (
        (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>),
        (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>)
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
            let (ha0, la0) = Self.mulHiLo(a0, 0xD251_1F53), (hb0, lb0) = Self.mulHiLo(b0, 0xD251_1F53)
            let (ha2, la2) = Self.mulHiLo(a2, 0xCD9E_8D57), (hb2, lb2) = Self.mulHiLo(b2, 0xCD9E_8D57)
            (a0, a1, a2, a3) = (ha2 ^ a1 ^ k0, la2, ha0 ^ a3 ^ k1, la0)
            (b0, b1, b2, b3) = (hb2 ^ b1 ^ k0, lb2, hb0 ^ b3 ^ k1, lb0)
        }
        return ((a0, a1, a2, a3), (b0, b1, b2, b3))
    }

    /// The high and low words of x·k in each lane. The lanes are multiplied as 64-bit pairs, the even words
    /// in place and the odd ones shifted down (one 32×32→64 multiply each, `vpmuludq`), and the halves
    /// are recombined with masks; widening to eight 64-bit lanes and narrowing back costs more shuffles than
    /// the multiplies themselves.
    @inlinable @inline(__always)
    static func mulHiLo(_ x: SIMD8<UInt32>, _ k: UInt64) -> (hi: SIMD8<UInt32>, lo: SIMD8<UInt32>) {
        let pairs = unsafeBitCast(x, to: SIMD4<UInt64>.self), low: SIMD4<UInt64> = .init(repeating: 0xFFFF_FFFF)
        let even = (pairs & low) &* k, odd = (pairs &>> 32) &* k
        let hi = (even &>> 32) | (odd & ~low), lo = (even & low) | (odd &<< 32)
        return (unsafeBitCast(hi, to: SIMD8<UInt32>.self), unsafeBitCast(lo, to: SIMD8<UInt32>.self))
    }

    /// Normals per tile of ``normals256(stream:tile:scratch:into:)``.
    public static let tileSize = 256

    /// The 256 standard normals of tile `tile` (indices 256·tile ..< 256·tile + 256) into `out[0 ..< 256]`,
    /// using `scratch[0 ..< 128]`. The tile reads blocks 32·tile ..< 32·tile + 32; word w of block
    /// 32·tile + j goes to scratch[32w + j], and scratch[i] gives normals i (cosine) and 128 + i (sine).
    /// Words are laid out in plain arrays first, so that Box–Muller is a loop the compiler vectorises.
    @inlinable
    public func normals256(
        stream: UInt64, tile: UInt64, scratch: UnsafeMutablePointer<UInt32>, into out: UnsafeMutablePointer<Float>
    ) {
        scratch.withMemoryRebound(to: SIMD8<UInt32>.self, capacity: 16) { v in
            for g in 0..<2 {  // vector 4w + c holds word w of blocks 8c ..< 8c + 8
                let (a, b) = blocks16(stream: stream, block0: tile &* 32 &+ UInt64(g) &* 16)
                (v[2 * g], v[4 + 2 * g], v[8 + 2 * g], v[12 + 2 * g]) = a
                (v[2 * g + 1], v[5 + 2 * g], v[9 + 2 * g], v[13 + 2 * g]) = b
            }
        }
        Self.boxMuller(words: scratch, into: out)
    }

    /// (out[i], out[128 + i]) from Box–Muller on words[i], i < 128. Four independent pairs per iteration:
    /// one pair's chain (log, square root, products) is long, and the core overlaps four of them.
    @inlinable
    static func boxMuller(words: UnsafePointer<UInt32>, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<32 {
            let (a0, a1) = boxMuller(words[i]), (b0, b1) = boxMuller(words[32 + i])
            let (c0, c1) = boxMuller(words[64 + i]), (d0, d1) = boxMuller(words[96 + i])
            (out[i], out[32 + i], out[64 + i], out[96 + i]) = (a0, b0, c0, d0)
            (out[128 + i], out[160 + i], out[192 + i], out[224 + i]) = (a1, b1, c1, d1)
        }
    }

    /// Calls `body(range, z)` over `range` in tiles, z[k] being the normal at index `range.lowerBound + k`
    /// of `stream`; a tile of normals (1 KiB) lives on the stack only while `body` uses it. Single-threaded:
    /// callers split work into ranges.
    @inlinable
    public func withNormals(stream: UInt64, range: Range<Int>, _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Self.tileSize + Self.tileSize / 2) { buffer in
            let t = buffer.baseAddress!
            t.advanced(by: Self.tileSize).withMemoryRebound(to: UInt32.self, capacity: Self.tileSize / 2) { scratch in
                var start = range.lowerBound
                while start < range.upperBound {
                    let tile = start / Self.tileSize, first = tile * Self.tileSize,
                        end = min(range.upperBound, first + Self.tileSize)
                    normals256(stream: stream, tile: UInt64(tile), scratch: scratch, into: t)
                    body(start..<end, t + (start - first))
                    start = end
                }
            }
        }
    }

    /// Box–Muller on one 32-bit word: u1 = (x ≫ 16 + ½)·2⁻¹⁶ ∈ (0, 1), u2 = (x mod 2¹⁶)·2⁻¹⁶ ∈ [0, 1);
    /// returns (r cos 2πu2, r sin 2πu2) with r = √(−2 ln u1). Branch-free (integer masks), so loops of it vectorise.
    @inlinable @inline(__always)
    public static func boxMuller(_ x: UInt32) -> (Float, Float) {
        let u1 = Float(Int32(truncatingIfNeeded: (x &>> 15) | 1)) * 0x1p-17
        let r = (-2 * logUnit(u1)).squareRoot()
        let (c, s) = sinCosTurn(x & 0xFFFF)
        return (r * c, r * s)
    }

    /// ln u for u in (0, 1] (Cephes logf: u = m·2ᵉ with m in [√½, √2), a degree-8 polynomial in m − 1).
    @inlinable @inline(__always)
    static func logUnit(_ u: Float) -> Float {
        let bits = Int32(bitPattern: u.bitPattern)
        let mantissa = (bits & 0x007F_FFFF) | 0x3F00_0000  // m in [0.5, 1)
        let small = (mantissa &- 0x3F35_04F3) &>> 31  // −1 where m < √½, else 0
        let e = Float((bits &>> 23) &- 126 &+ small)
        let m0 = Float(bitPattern: UInt32(bitPattern: mantissa))
        let m = m0 + Float(bitPattern: UInt32(bitPattern: mantissa & small)) - 1  // 2m − 1 where small, else m − 1
        let z = m * m
        // p = c₀ + c₁m + … + c₈m⁸ by Estrin's scheme (pairs, then powers of m²): a short dependency chain.
        let z2 = z * z
        let p01 = Float(3.3333331174e-1).addingProduct(-2.4999993993e-1, m),
            p23 = Float(2.0000714765e-1).addingProduct(-1.6668057665e-1, m)
        let p45 = Float(1.4249322787e-1).addingProduct(-1.2420140846e-1, m),
            p67 = Float(1.1676998740e-1).addingProduct(-1.1514610310e-1, m)
        let p = p01.addingProduct(p23, z).addingProduct(p45.addingProduct(p67, z), z2).addingProduct(
            7.0376836292e-2, z2 * z2)
        let y = (-0.5 * z).addingProduct(p * m, z).addingProduct(-2.12194440e-4, e)
        return (m + y).addingProduct(0.693359375, e)
    }

    /// (cos 2πt, sin 2πt) for t = k·2⁻¹⁶, k in [0, 2¹⁶): the nearest quarter turn q = round(4t) from the
    /// integer k, then Cephes sinf/cosf on the rest (|angle| ≤ π/4), rotated by q quarter turns.
    @inlinable @inline(__always)
    static func sinCosTurn(_ k: UInt32) -> (Float, Float) {
        let q = Int32(truncatingIfNeeded: (k &+ (1 << 13)) &>> 14)  // 0 … 4
        let rest = Int32(truncatingIfNeeded: k) &- (q &<< 14)  // −2¹³ … 2¹³
        let a = Float(rest) * (0x1p-16 * 2 * Float.pi), z = a * a
        let s = a.addingProduct(
            Float(-1.6666654611e-1).addingProduct(Float(8.3321608736e-3).addingProduct(-1.9515295891e-4, z), z) * z, a)
        let c = Float(1).addingProduct(-0.5, z).addingProduct(
            Float(4.166664568298827e-2).addingProduct(
                Float(-1.388731625493765e-3).addingProduct(2.443315711809948e-5, z), z), z * z)
        // Odd q swaps sin and cos; the signs are flipped by xor on the sign bit.
        let swap = 0 &- (q & 1), ci = Int32(bitPattern: c.bitPattern), si = Int32(bitPattern: s.bitPattern)
        let cc = (ci & ~swap) | (si & swap), ss = (si & ~swap) | (ci & swap)
        return (
            Float(bitPattern: UInt32(bitPattern: cc ^ (((q &+ 1) & 2) &<< 30))),
            Float(bitPattern: UInt32(bitPattern: ss ^ ((q & 2) &<< 30)))
        )
    }
}
