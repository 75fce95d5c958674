import Testing
import TensorCore
@testable import Methods

@Suite("LSP-Offload count sketches")
struct CountSketchTests {
    /// P as a dense count×d matrix (Double).
    static func dense(_ s: CountSketch) -> [[Double]] {
        var p = [[Double]](repeating: [Double](repeating: 0, count: s.size), count: s.count)
        for i in 0..<s.count {
            for k in 0..<s.nonzeros {
                p[i][Int(s.indices.pointer[i * s.nonzeros + k])] += Double(s.values.pointer[i * s.nonzeros + k])
            }
        }
        return p
    }

    static func random(_ n: Int, seed: UInt64) -> [Float] {
        var x = [Float](repeating: 0, count: n)
        x.withUnsafeMutableBufferPointer { Philox(seed: seed).fillNormal($0, stream: 0) }
        return x
    }

    @Test(
        """
        each coordinate maps to r distinct sketch rows; compress is Pᵀ·G·Q and decompress adds α·P·Δ·Qᵀ, as dense \
        products
        """
    )
    func matchesDense() {
        let (m, n, d, r) = (37, 23, 16, 4), ledger = MemoryLedger(), rng = Philox(seed: 3)
        let pair = SketchPair(
            left: CountSketch(count: m, size: d, nonzeros: r, generator: rng, stream: 0, ledger: ledger),
            right: CountSketch(count: n, size: d, nonzeros: r, generator: rng, stream: 10, ledger: ledger))
        for s in [pair.left, pair.right] {
            for i in 0..<s.count { #expect(Set((0..<r).map { s.indices.pointer[i * r + $0] }).count == r) }
        }
        let (p, q) = (Self.dense(pair.left), Self.dense(pair.right)), g = Self.random(m * n, seed: 1)
        var compressed = [Float](repeating: 0, count: d * d)
        pair.compress(g, into: &compressed, ledger: ledger)
        for a in 0..<d {
            for b in 0..<d {
                var e = 0.0
                for i in 0..<m { for j in 0..<n { e += p[i][a] * Double(g[i * n + j]) * q[j][b] } }
                #expect(abs(Double(compressed[a * d + b]) - e) <= 1e-4 * max(1, abs(e)), "Ĝ[\(a), \(b)]")
            }
        }
        let delta = Self.random(d * d, seed: 2), w0 = Self.random(m * n, seed: 3)
        var w = w0
        pair.decompress(delta, scale: -0.5, into: &w, ledger: ledger)
        for i in 0..<m {
            for j in 0..<n {
                var e = 0.0
                for a in 0..<d { for b in 0..<d { e += p[i][a] * Double(delta[a * d + b]) * q[j][b] } }
                #expect(abs(Double(w[i * n + j]) - (Double(w0[i * n + j]) - 0.5 * e)) <= 1e-4, "W[\(i), \(j)]")
            }
        }
    }

    @Test("identity sketches (d = m = n, r = 1, value 1) compress to G itself and decompress to Δ itself")
    func identity() {
        let n = 12, ledger = MemoryLedger()
        func identity() -> CountSketch {
            let s = CountSketch(count: n, size: n, nonzeros: 1, generator: Philox(seed: 1), stream: 0, ledger: ledger)
            for i in 0..<n { (s.indices.pointer[i], s.values.pointer[i]) = (Int32(i), 1) }
            return s
        }
        let pair = SketchPair(left: identity(), right: identity()), g = Self.random(n * n, seed: 4)
        var out = [Float](repeating: 0, count: n * n), w = [Float](repeating: 0, count: n * n)
        pair.compress(g, into: &out, ledger: ledger)
        pair.decompress(g, scale: 1, into: &w, ledger: ledger)
        #expect(out == g && w == g)
    }
}
