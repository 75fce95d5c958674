import Foundation
import Testing
import TensorCore

@Suite("Counter-based RNG")
struct PhiloxTests {
    @Test("Philox4x32-10 known-answer vectors (Random123)")
    func knownAnswers() {
        #expect(Philox(seed: 0).block(stream: 0, block: 0) == SIMD4(0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8))
        // counter = (all ones), key = (all ones)
        #expect(
            Philox(seed: .max).block(stream: .max, block: .max)
                == SIMD4(0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD))
    }

    @Test("a fill equals the per-index values, for any thread count and any offset", arguments: [1, 2, 5])
    func orderAndThreads(threads: Int) {
        let rng = Philox(seed: 42), n = 100_003
        let saved = Parallel.threadCount
        defer { Parallel.threadCount = saved }
        Parallel.threadCount = threads
        var full = [Float](repeating: 0, count: n)
        full.withUnsafeMutableBufferPointer { rng.fillNormal($0, stream: 9) }
        // two whole tiles
        #expect((12_288..<12_800).allSatisfy { full[$0] == rng.normal(stream: 9, index: UInt64($0)) })
        // Generating the second half first, from an odd offset, gives the same numbers.
        var tail = [Float](repeating: 0, count: n - 50_001)
        tail.withUnsafeMutableBufferPointer { rng.fillNormal($0, stream: 9, offset: 50_001) }
        #expect(Array(full[50_001...]) == tail)
        var uniforms = [Float](repeating: 0, count: 1001)
        uniforms.withUnsafeMutableBufferPointer { rng.fillUniform($0, stream: 3, offset: 7) }
        #expect(uniforms.enumerated().allSatisfy { $0.element == rng.uniform(stream: 3, index: UInt64($0.offset + 7)) })
        #expect(uniforms.allSatisfy { $0 >= 0 && $0 < 1 })
    }

    @Test("streams and seeds give different numbers")
    func independence() {
        let a = Philox(seed: 1)
        #expect(a.bits(stream: 0, index: 0) != a.bits(stream: 1, index: 0))
        #expect(a.bits(stream: 0, index: 0) != Philox(seed: 2).bits(stream: 0, index: 0))
    }

    @Test("normals have the first four moments of N(0, 1)")
    func moments() {
        let n = 2_000_000
        var x = [Float](repeating: 0, count: n)
        x.withUnsafeMutableBufferPointer { Philox(seed: 7).fillNormal($0, stream: 0) }
        var m = [Double](repeating: 0, count: 5)
        for v in x {
            let d = Double(v)
            m[1] += d
            m[2] += d * d
            m[3] += d * d * d
            m[4] += d * d * d * d
        }
        let mean = m[1] / Double(n), second = m[2] / Double(n), third = m[3] / Double(n), fourth = m[4] / Double(n)
        // Standard errors at n = 2e6: mean 7e-4, E[x²] 1e-3, E[x³] 2.7e-3, E[x⁴] 7.3e-3; bounds are 5 of them.
        #expect(abs(mean) < 0.0035)
        #expect(abs(second - 1) < 0.005)
        #expect(abs(third) < 0.014)
        #expect(abs(fourth - 3) < 0.037)
    }

    @Test("sixteen-block Philox equals the scalar blocks; polynomial Box–Muller is within 2e-6 of libm's")
    func vectorKernel() {
        let rng = Philox(seed: 0xDEAD_BEEF_0123)
        let (a, b) = rng.blocks16(stream: 77, block0: (1 << 32) - 3)  // crosses the 32-bit boundary
        for (g, (x0, x1, x2, x3)) in [a, b].enumerated() {
            for j in 0..<8 {
                #expect(
                    rng.block(stream: 77, block: (1 << 32) - 3 + UInt64(8 * g + j)) == SIMD4(x0[j], x1[j], x2[j], x3[j])
                )
            }
        }
        var worst = 0.0
        for i in 0..<20_000 {
            for w in 0..<4 {
                let x = rng.block(stream: 3, block: UInt64(i))[w]
                let (c, s) = Philox.boxMuller(x)
                let u1 = (Double(x >> 16) + 0.5) * 0x1p-16, u2 = Double(x & 0xFFFF) * 0x1p-16
                let r: Double = (-2 * Foundation.log(u1)).squareRoot(), angle: Double = 2 * .pi * u2
                let ec: Double = abs(Double(c) - r * Foundation.cos(angle)),
                    es: Double = abs(Double(s) - r * Foundation.sin(angle))
                worst = max(worst, ec, es)
            }
        }
        #expect(worst < 2e-6, "max error \(worst)")
    }

    @Test("every RNG domain has its own key, and none is the key of one of the first 2¹⁶ data streams")
    func domainsAreDistinct() {
        let offsets = RNGDomain.allCases.map(\.rawValue)
        #expect(Set(offsets).count == offsets.count)
        let others = Set(offsets.filter { $0 != RNGDomain.dataOrder.rawValue })
        for k in UInt64(1)..<(1 << 16) { #expect(!others.contains(k &* RNGDomain.dataStreamSpacing)) }
        #expect(Philox(seed: 7, dataStream: 0) == Philox(seed: 7, domain: .dataOrder))
        #expect(Philox(seed: 7, dataStream: 1) != Philox(seed: 7, domain: .mezo))
    }
}
