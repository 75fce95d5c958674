import Testing
import TensorCore

@Suite("GEMM, math kernels and the memory ledger")
struct KernelTests {
    @Test(
        "GEMM with every transpose combination matches a naive product",
        arguments: [(false, false), (true, false), (false, true), (true, true)])
    func gemm(transA: Bool, transB: Bool) {
        let (m, n, k) = (7, 5, 9)
        let rng = Philox(seed: 1)
        let a = (0..<m * k).map { rng.uniform(stream: 0, index: UInt64($0)) - 0.5 }
        let b = (0..<k * n).map { rng.uniform(stream: 1, index: UInt64($0)) - 0.5 }
        var c = [Float](repeating: 1, count: m * n)
        // Stored shapes: A is m×k (or k×m when transposed), B is k×n (or n×k).
        GEMM.multiply(
            m: m, n: n, k: k, a, lda: transA ? m : k, transA: transA, b, ldb: transB ? k : n, transB: transB,
            &c, ldc: n, alpha: 2, beta: 0.5)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j])
                }
                #expect(abs(c[i * n + j] - (2 * s + 0.5)) < 1e-5)
            }
        }
    }

    @Test("an empty inner dimension scales C by beta, and beta = 0 overwrites NaN")
    func emptyInnerDimension() {
        var c: [Float] = [.nan, 2, 3, 4]
        let none: [Float] = [0]
        GEMM.multiply(m: 2, n: 2, k: 0, none, lda: 1, none, ldb: 2, &c, ldc: 2, beta: 0)
        #expect(c == [0, 0, 0, 0])
        c = [1, 2, 3, 4]
        GEMM.multiply(m: 2, n: 2, k: 0, none, lda: 1, none, ldb: 2, &c, ldc: 2, beta: 0.5)
        #expect(c == [0.5, 1, 1.5, 2])
    }

    @Test("fast exp stays within 2e-7 relative of libm")
    func exp() {
        var worst: Double = 0
        for i in 0..<20001 {
            let x = Float(i - 10000) * 0.0087  // [-87, 87]
            let exact = Foundation_exp(Double(x))
            worst = max(worst, abs(Double(FastMath.exp(x)) - exact) / exact)
        }
        #expect(worst < 2e-7)
    }

    @Test("the ledger tracks current and peak bytes per category")
    func ledger() {
        let ledger = MemoryLedger()
        do {
            let a = AlignedBuffer<Float>(count: 1000, category: .weights, ledger: ledger)
            #expect(Int(bitPattern: a.pointer) % 64 == 0)
            do {
                let b = AlignedBuffer<Float>(count: 500, category: .activations, ledger: ledger)
                #expect(ledger.snapshot().current[.activations] == 2000)
                _ = b
            }
            #expect(ledger.snapshot().current[.activations] == 0)
            #expect(ledger.snapshot().currentTotal == 4000)
            _ = a
        }
        let s = ledger.snapshot()
        #expect(s.peak[.weights] == 4000 && s.peak[.activations] == 2000 && s.peakTotal == 6000)
        #expect(s.currentTotal == 0)
    }

    @Test("reductions")
    func reductions() {
        let x: [Float] = (1...100).map(Float.init)
        #expect(Vector.sumOfSquares(x, 100) == 338_350)
        #expect(Vector.dot(x, x, 100) == 338_350)
        #expect(Vector.max(x, 100) == 100)
    }
}

import Foundation
private func Foundation_exp(_ x: Double) -> Double { Foundation.exp(x) }
