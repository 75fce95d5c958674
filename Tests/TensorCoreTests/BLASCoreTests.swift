import Foundation
import Testing
import TensorCore

@Suite("OpenBLAS kernel choice")
struct BLASCoreTests {
    static let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"]

    @Test("a pre-AVX2 fallback is replaced by the best set the CPU offers; a knowing choice stands")
    func replacement() {
        #expect(BLASCore.replacement(detected: "Prescott", flags: Self.avx512) == "SkylakeX")
        #expect(BLASCore.replacement(detected: "Core2", flags: ["avx2", "fma"]) == "Haswell")
        #expect(BLASCore.replacement(detected: "Sandybridge", flags: ["avx", "avx2", "fma"]) == "Haswell")
        #expect(BLASCore.replacement(detected: "Prescott", flags: ["sse3", "avx"]) == nil)
        #expect(BLASCore.replacement(detected: "SkylakeX", flags: Self.avx512) == nil)
        #expect(BLASCore.replacement(detected: "Zen", flags: Self.avx512) == nil)
        #expect(BLASCore.replacement(detected: "Haswell", flags: ["avx2", "fma"]) == nil)
        // AVX-512 foundation alone (no BW/VL) is not what the SkylakeX kernels need
        #expect(BLASCore.replacement(detected: "Prescott", flags: ["avx2", "fma", "avx512f"]) == "Haswell")
    }

    @Test("after the first GEMM OpenBLAS runs kernels at the CPU's level, and they multiply correctly")
    func live() {
        let (m, n, k) = (301, 203, 157)
        let a = (0..<m * k).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        let b = (0..<k * n).map { Float(($0 * 104_729) % 1000) / 1000 - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        GEMM.multiply(m: m, n: n, k: k, a, lda: k, b, ldb: n, &c, ldc: n)
        let offered = BLASCore.level(flags: CPUInfo.flags())
        if offered > .older, BLASCore.level(core: BLASCore.current) == .older {
            // only when the user forced an old kernel set themselves
            let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
            #expect(forced.map { BLASCore.level(core: $0) == .older } == true, "OpenBLAS runs \(BLASCore.current)")
        }
        var worst = 0.0
        for i in stride(from: 0, to: m, by: 7) {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                worst = max(worst, abs(Double(c[i * n + j]) - s))
            }
        }
        #expect(worst < 1e-4)
    }
}
