import Testing
@testable import TensorCore

@Suite("INT8 block quantization")
struct Int8BlocksTests {
    /// Values spread over four orders of magnitude, a zero block, and a partial last block.
    static func values(_ n: Int, seed: UInt64 = 1) -> [Float] {
        let rng = Philox(seed: seed), magnitudes: [Float] = [0.01, 0.1, 1, 10]
        return (0..<n).map { i -> Float in
            i >= 256 && i < 320 ? 0 : rng.normal(stream: 0, index: UInt64(i)) * magnitudes[i % 4]
        }
    }

    func roundTrip(_ x: [Float], blockSize: Int, rounding: Rounding) -> (q: [Int8], scales: [Float], back: [Float]) {
        var q = [Int8](repeating: 0, count: x.count)
        var scales = [Float](repeating: 0, count: Int8Blocks.blockCount(x.count, blockSize: blockSize))
        var back = [Float](repeating: 0, count: x.count)
        Int8Blocks.quantize(x, count: x.count, blockSize: blockSize, into: &q, scales: &scales, rounding: rounding)
        Int8Blocks.dequantize(q, scales: scales, count: x.count, blockSize: blockSize, into: &back)
        return (q, scales, back)
    }

    @Test(
        "nearest: each block's scale is max|x|/127, every value within half a step; a zero block stays zero",
        arguments: [64, 100, 576])
    func nearest(blockSize: Int) {
        let x = Self.values(5000)
        let (q, scales, back) = roundTrip(x, blockSize: blockSize, rounding: .nearest)
        for (b, s) in scales.enumerated() {
            let block = x[b * blockSize..<min(x.count, (b + 1) * blockSize)]
            #expect(s == block.map(abs).max()! / 127)
            for i in block.indices { #expect(abs(back[i] - x[i]) <= s * 0.5 * (1 + 1e-5), "value \(i)") }
        }
        #expect(q.contains(127) || q.contains(-127))
        #expect(back[256..<320].allSatisfy { $0 == 0 } || blockSize > 64)
    }

    @Test("stochastic: within one step, unbiased over many draws, and independent of how the range is split")
    func stochastic() {
        let x = Self.values(1000), blockSize = 64
        var mean = [Double](repeating: 0, count: x.count)
        let draws = 400
        var scales: [Float] = []
        for d in 0..<draws {
            let r = roundTrip(
                x, blockSize: blockSize, rounding: .stochastic(Philox(seed: 9), stream: UInt64(d), offset: 0))
            scales = r.scales
            for i in x.indices {
                #expect(abs(r.back[i] - x[i]) <= r.scales[i / blockSize] * (1 + 1e-5))
                mean[i] += Double(r.back[i]) / Double(draws)
            }
        }
        // Each draw errs by at most one step s with variance ≤ s²/4: the mean of 400 has σ ≤ s/40.
        for i in x.indices {
            #expect(abs(mean[i] - Double(x[i])) <= 5 * Double(scales[i / blockSize]) / 40, "value \(i)")
        }

        // Two halves at a block boundary, with the second's offset, equal the whole.
        let rng = Philox(seed: 3),
            whole = roundTrip(x, blockSize: blockSize, rounding: .stochastic(rng, stream: 7, offset: 0))
        let head = roundTrip(Array(x[..<640]), blockSize: blockSize, rounding: .stochastic(rng, stream: 7, offset: 0))
        let tail = roundTrip(Array(x[640...]), blockSize: blockSize, rounding: .stochastic(rng, stream: 7, offset: 640))
        #expect(head.q + tail.q == whole.q)
    }

    @Test("a block with a non-finite value gets a NaN scale, so it cannot pass unnoticed")
    func nonFinite() {
        var x = Self.values(128)
        x[70] = .infinity
        let r = roundTrip(x, blockSize: 64, rounding: .nearest)
        #expect(r.scales[0].isFinite && r.scales[1].isNaN && r.back[100].isNaN)
    }

    @Test("16-bit uniforms: tile t is blocks 16t ..< 16t + 16 read as half-words")
    func uniforms16() {
        let rng = Philox(seed: 11)
        var got: [UInt16] = []
        rng.withUniforms16(stream: 5, range: 100..<400) { r, u in got += (0..<r.count).map { u[$0] } }
        var expected: [UInt16] = []
        for h in 100..<400 {
            let tile = h / 128, f = (h % 128) / 2, vector = f / 8, lane = f % 8
            let block = UInt64(tile * 16 + (vector < 4 ? lane : 8 + lane)), word = UInt64(vector % 4)
            expected.append(
                UInt16(truncatingIfNeeded: rng.bits(stream: 5, index: block * 4 + word) >> (16 * UInt32(h % 2))))
        }
        #expect(got == expected)
    }
}
