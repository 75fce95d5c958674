/// Standard normals from Philox blocks, eight blocks at a time in SIMD lanes (Box–Muller with polynomial
/// log, sin and cos, ≈ 1e-7 relative error), so that zeroth-order methods can regenerate a perturbation
/// inside their update loops at a few nanoseconds per value instead of storing it.
extension Philox {
    /// Philox4x32-10 of the counter blocks `block0 ..< block0 + 8` of `stream`: output word w of block
    /// block0 + j is lane j of the w-th vector.
    @inlinable
    public func blocks8(stream: UInt64, block0: UInt64) -> (SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>, SIMD8<UInt32>) {
        let lanes = SIMD8<UInt64>(0, 1, 2, 3, 4, 5, 6, 7) &+ block0
        var c0 = SIMD8<UInt32>(truncatingIfNeeded: lanes), c1 = SIMD8<UInt32>(truncatingIfNeeded: lanes &>> 32)
        var c2 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream))
        var c3 = SIMD8<UInt32>(repeating: UInt32(truncatingIfNeeded: stream &>> 32))
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed &>> 32)
        for round in 0..<10 {
            if round > 0 {
                k0 &+= 0x9E37_79B9
                k1 &+= 0xBB67_AE85
            }
            let p0 = SIMD8<UInt64>(truncatingIfNeeded: c0) &* 0xD251_1F53  // 32×32 → 64-bit products
            let p1 = SIMD8<UInt64>(truncatingIfNeeded: c2) &* 0xCD9E_8D57
            let hi0 = SIMD8<UInt32>(truncatingIfNeeded: p0 &>> 32), lo0 = SIMD8<UInt32>(truncatingIfNeeded: p0)
            let hi1 = SIMD8<UInt32>(truncatingIfNeeded: p1 &>> 32), lo1 = SIMD8<UInt32>(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }

    /// The 32 standard normals of blocks `block0 ..< block0 + 8` into `out[0 ..< 32]` (index order).
    @inlinable
    public func normals32(stream: UInt64, block0: UInt64, into out: UnsafeMutablePointer<Float>) {
        let (x0, x1, x2, x3) = blocks8(stream: stream, block0: block0)
        let (a0, a1) = Self.boxMuller(x0, x1), (b0, b1) = Self.boxMuller(x2, x3)
        for j in 0..<8 {
            out[4 * j] = a0[j]
            out[4 * j + 1] = a1[j]
            out[4 * j + 2] = b0[j]
            out[4 * j + 3] = b1[j]
        }
    }

    /// Calls `body(range, z)` over `range` in tiles, z[k] being the normal at index `range.lowerBound + k`
    /// of `stream`; a tile of normals (1 KiB) lives on the stack only while `body` uses it. Single-threaded:
    /// callers split work into ranges (tile boundaries are multiples of 32 indices).
    @inlinable
    public func withNormals(stream: UInt64, range: Range<Int>, _ body: (Range<Int>, UnsafePointer<Float>) -> Void) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 + 32) { tile in
            let t = tile.baseAddress!
            var start = range.lowerBound
            while start < range.upperBound {
                let first = start & ~31, end = min(range.upperBound, first + 256)
                var block = UInt64(first / 4), filled = 0
                while first + filled < end {
                    normals32(stream: stream, block0: block, into: t + filled)
                    block += 8
                    filled += 32
                }
                body(start..<end, t + (start - first))
                start = end
            }
        }
    }

    /// Box–Muller on uniform bit pairs: u1 = (x ≫ 8 + 1)·2⁻²⁴ ∈ (0, 1], u2 = (y ≫ 8)·2⁻²⁴ ∈ [0, 1);
    /// returns (r cos 2πu2, r sin 2πu2) with r = √(−2 ln u1).
    @inlinable
    public static func boxMuller(_ x: SIMD8<UInt32>, _ y: SIMD8<UInt32>) -> (SIMD8<Float>, SIMD8<Float>) {
        let u1 = SIMD8<Float>((x &>> 8) &+ 1) * 0x1p-24, u2 = SIMD8<Float>(y &>> 8) * 0x1p-24
        let r = (-2 * logUnit(u1)).squareRoot()
        let (c, s) = sinCosTurn(u2)
        return (r * c, r * s)
    }

    /// ln u for u in (0, 1] (Cephes logf: u = m·2ᵉ with m in [√½, √2), a degree-8 polynomial in m − 1).
    @inlinable
    static func logUnit(_ u: SIMD8<Float>) -> SIMD8<Float> {
        let bits = unsafeBitCast(u, to: SIMD8<UInt32>.self)
        var e = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: bits &>> 23) &- 126)
        var m = unsafeBitCast((bits & 0x007F_FFFF) | 0x3F00_0000, to: SIMD8<Float>.self)  // [0.5, 1)
        let small = m .< 0.707106781186547524
        e.replace(with: e - 1, where: small)
        m = m.replacing(with: m + m, where: small) - 1
        let z = m * m
        var p = SIMD8<Float>(repeating: 7.0376836292e-2)
        p = p * m - 1.1514610310e-1
        p = p * m + 1.1676998740e-1
        p = p * m - 1.2420140846e-1
        p = p * m + 1.4249322787e-1
        p = p * m - 1.6668057665e-1
        p = p * m + 2.0000714765e-1
        p = p * m - 2.4999993993e-1
        p = p * m + 3.3333331174e-1
        var y = p * m * z - 2.12194440e-4 * e - 0.5 * z
        y = m + y + 0.693359375 * e
        return y
    }

    /// (cos 2πt, sin 2πt) for t in [0, 1): the nearest quarter turn q, then Cephes sinf/cosf on the rest
    /// (|angle| ≤ π/4), rotated by q quarter turns.
    @inlinable
    static func sinCosTurn(_ t: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let q = (4 * t).rounded(.toNearestOrEven)
        let a = (t - 0.25 * q) * (2 * Float.pi), z = a * a
        let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * a + a
        let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1
        let qi = SIMD8<Int32>(q)
        let swap = (qi & 1) .!= 0
        let cc = c.replacing(with: s, where: swap), ss = s.replacing(with: c, where: swap)
        return (cc.replacing(with: -cc, where: ((qi &+ 1) & 2) .!= 0), ss.replacing(with: -ss, where: (qi & 2) .!= 0))
    }
}
