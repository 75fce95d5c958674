import Testing
import TensorCore

@Suite("bf16 and f16 conversions")
struct ConversionTests {
    @Test("round to nearest even, NaN and infinity")
    func nearestEven() {
        #expect(Conversions.bf16(1.0) == 0x3F80)
        // 1 + 2^-8 is exactly halfway between 1 and the next bf16 (1 + 2^-7): ties go to even (1.0).
        #expect(Conversions.bf16(1 + 0x1p-8) == 0x3F80)
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up to even.
        #expect(Conversions.bf16(1 + 3 * 0x1p-8) == 0x3F82)
        #expect(Conversions.bf16(1 + 0x1p-8 + 0x1p-16) == 0x3F81)
        #expect(Conversions.float(bf16: Conversions.bf16(.infinity)) == .infinity)
        #expect(Conversions.float(bf16: Conversions.bf16(.nan)).isNaN)
        #expect(Conversions.float(bf16: Conversions.bf16(-2.5)) == -2.5)
    }

    @Test("stochastic rounding is unbiased")
    func stochasticIsUnbiased() {
        let x: Float = 1 + 0x1p-9  // a quarter of the way from 1 to the next bf16 (1 + 2^-7)
        let n = 200_000
        let source = [Float](repeating: x, count: n)
        var bits = [UInt16](repeating: 0, count: n)
        source.withUnsafeBufferPointer { s in
            bits.withUnsafeMutableBufferPointer { d in
                Conversions.toBF16(s, d, rounding: .stochastic(Philox(seed: 5), stream: 0, offset: 0))
            }
        }
        let mean = bits.reduce(0.0) { $0 + Double(Conversions.float(bf16: $1)) } / Double(n)
        let upFraction = Double(bits.filter { $0 == 0x3F81 }.count) / Double(n)
        #expect(bits.allSatisfy { $0 == 0x3F80 || $0 == 0x3F81 })
        #expect(abs(upFraction - 0.25) < 0.005)  // standard error ≈ 0.001
        #expect(abs(mean - Double(x)) < 0.005 * 0x1p-7)
        // Round to nearest keeps it at 1.0 every time: the bias stochastic rounding removes.
        #expect(Conversions.bf16(x) == 0x3F80)
    }

    @Test("buffer round trips: bf16 within half an ulp, f16 exact for representable values")
    func roundTrips() {
        let values: [Float] = (0..<1000).map { Float($0 - 500) * 0.37 }
        var half = [UInt16](repeating: 0, count: values.count), back = [Float](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { s in half.withUnsafeMutableBufferPointer { Conversions.toBF16(s, $0) } }
        half.withUnsafeBufferPointer { s in back.withUnsafeMutableBufferPointer { Conversions.fromBF16(s, $0) } }
        #expect(zip(values, back).allSatisfy { abs($0 - $1) <= abs($0) * 0x1p-8 })
        let exact: [Float] = [0, 1, -2, 0.5, 1024, 65504, -0.000_061_035_156_25]
        var h = [UInt16](repeating: 0, count: exact.count), r = [Float](repeating: 0, count: exact.count)
        exact.withUnsafeBufferPointer { s in h.withUnsafeMutableBufferPointer { Conversions.toF16(s, $0) } }
        h.withUnsafeBufferPointer { s in r.withUnsafeMutableBufferPointer { Conversions.fromF16(s, $0) } }
        #expect(r == exact)
    }
}
