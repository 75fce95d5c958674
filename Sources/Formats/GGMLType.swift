import TensorCore

/// The tensor encodings of GGUF files that LeanTune reads; every one dequantizes to fp32 (full
/// fine-tuning starts from fp32). Layouts follow ggml's block structs.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q8_0 = 8, q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    /// Values per block.
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q8_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18
        case .q4_1: 20
        case .q8_0: 34
        case .q4_K: 144
        case .q5_K: 176
        case .q6_K: 210
        }
    }

    public var name: String { "\(self)".uppercased() }

    /// The type named `name` (case-insensitive: q8_0, Q8_0).
    public init?(name: String) {
        guard let type = Self.allCases.first(where: { $0.name == name.uppercased() }) else { return nil }
        self = type
    }

    /// Bytes of `count` values (count must be a multiple of ``blockSize``).
    public func byteCount(_ count: Int) -> Int { count / blockSize * blockBytes }

    /// Decodes `count` values from `src` into `dst`, in parallel over blocks.
    public func dequantize(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let blocks = count / blockSize, (size, bytes) = (blockSize, blockBytes)
        nonisolated(unsafe) let (src, dst) = (src, dst)  // tasks own disjoint blocks
        let decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void =
            switch self {
            case .f32: { $1[0] = $0.loadUnaligned(as: Float.self) }
            case .f16: { $1[0] = half($0, 0) }
            case .bf16: { $1[0] = Conversions.float(bf16: $0.loadUnaligned(as: UInt16.self)) }
            case .q4_0: Self.q4_0
            case .q4_1: Self.q4_1
            case .q8_0: Self.q8_0
            case .q4_K: Self.q4_K
            case .q5_K: Self.q5_K
            case .q6_K: Self.q6_K
            }
        Parallel.forEachChunk(blocks, grain: max(1, 16384 / size)) { r in
            for b in r { decode(src + b * bytes, dst + b * size) }
        }
    }

    // MARK: - Blocks of 32: f16 scale (and min), then packed quants.

    /// d, qs[16]: w[j] = d·(lo − 8), w[j+16] = d·(hi − 8).
    static func q4_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), qs = x + 2
        for j in 0..<16 {
            let q = qs.load(fromByteOffset: j, as: UInt8.self)
            y[j] = d * Float(Int(q & 15) - 8)
            y[j + 16] = d * Float(Int(q >> 4) - 8)
        }
    }

    /// d, m, qs[16]: w[j] = d·lo + m, w[j+16] = d·hi + m.
    static func q4_1(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), m = half(x, 2), qs = x + 4
        for j in 0..<16 {
            let q = qs.load(fromByteOffset: j, as: UInt8.self)
            y[j] = d * Float(q & 15) + m
            y[j + 16] = d * Float(q >> 4) + m
        }
    }

    /// d, qs[32] (int8): w = d·q.
    static func q8_0(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0)
        for j in 0..<32 { y[j] = d * Float(x.load(fromByteOffset: 2 + j, as: Int8.self)) }
    }

    // MARK: - Super-blocks of 256 (k-quants).

    /// Scale and min of sub-block j from the 12 packed 6-bit bytes of Q4_K / Q5_K.
    static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (Float, Float) {
        func b(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (Float(b(j) & 63), Float(b(j + 4) & 63)) }
        return (Float((b(j + 4) & 0xF) | ((b(j - 4) >> 6) << 4)), Float((b(j + 4) >> 4) | ((b(j) >> 6) << 4)))
    }

    /// d, dmin, scales[12], qs[128]: 8 sub-blocks of 32, w = d·sc·q − dmin·m.
    static func q4_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2), scales = x + 4, qs = x + 16
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMin(2 * chunk, scales), (sc2, m2) = scaleMin(2 * chunk + 1, scales)
            let q = qs + 32 * chunk, out = y + 64 * chunk
            for l in 0..<32 {
                let byte = q.load(fromByteOffset: l, as: UInt8.self)
                out[l] = d * sc1 * Float(byte & 0xF) - dmin * m1
                out[l + 32] = d * sc2 * Float(byte >> 4) - dmin * m2
            }
        }
    }

    /// d, dmin, scales[12], qh[32], qs[128]: as Q4_K with a fifth bit per value from qh.
    static func q5_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 0), dmin = half(x, 2), scales = x + 4, qh = x + 16, qs = x + 48
        for chunk in 0..<4 {
            let (sc1, m1) = scaleMin(2 * chunk, scales), (sc2, m2) = scaleMin(2 * chunk + 1, scales)
            let q = qs + 32 * chunk, out = y + 64 * chunk
            let bit1 = UInt8(1) << (2 * chunk), bit2 = UInt8(2) << (2 * chunk)
            for l in 0..<32 {
                let byte = q.load(fromByteOffset: l, as: UInt8.self), high = qh.load(fromByteOffset: l, as: UInt8.self)
                out[l] = d * sc1 * Float(Int(byte & 0xF) + (high & bit1 != 0 ? 16 : 0)) - dmin * m1
                out[l + 32] = d * sc2 * Float(Int(byte >> 4) + (high & bit2 != 0 ? 16 : 0)) - dmin * m2
            }
        }
    }

    /// ql[128], qh[64], scales[16] (int8), d: 16 sub-blocks of 16, w = d·sc·(q − 32) with 6-bit q.
    static func q6_K(_ x: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(x, 208)
        for half128 in 0..<2 {
            let ql = x + 64 * half128, qh = x + 128 + 32 * half128, sc = x + 192 + 8 * half128
            let out = y + 128 * half128
            for l in 0..<32 {
                let s = l / 16
                func q(_ low: UInt8, _ shift: UInt8) -> Float {
                    Float(Int(low | (((qh.load(fromByteOffset: l, as: UInt8.self) >> shift) & 3) << 4)) - 32)
                }
                func scale(_ i: Int) -> Float { d * Float(sc.load(fromByteOffset: s + i, as: Int8.self)) }
                let a = ql.load(fromByteOffset: l, as: UInt8.self), b = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                out[l] = scale(0) * q(a & 0xF, 0)
                out[l + 32] = scale(2) * q(b & 0xF, 2)
                out[l + 64] = scale(4) * q(a >> 4, 4)
                out[l + 96] = scale(6) * q(b >> 4, 6)
            }
        }
    }
}

/// The IEEE half at byte `offset` of `x`, as Float.
@inline(__always)
func half(_ x: UnsafeRawPointer, _ offset: Int) -> Float {
    Float(Float16(bitPattern: x.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}
