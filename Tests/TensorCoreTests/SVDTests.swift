import Testing
@testable import TensorCore

@Suite("SVD")
struct SVDTests {
    /// A row-major m×n matrix U₀·diag(σ)·V₀ᵀ with orthonormal random U₀ (m×k), V₀ (n×k), k = min(m, n).
    static func matrix(
        rows m: Int, columns n: Int, sigma: [Float], ledger: MemoryLedger
    ) throws -> (a: [Float], u0: AlignedBuffer<Float>) {
        let k = min(m, n), rng = Philox(seed: 21)
        // U₀ column-major = U₀ᵀ row-major
        let ut = AlignedBuffer<Float>(count: k * m, category: .workspace, ledger: ledger)
        let vt = AlignedBuffer<Float>(count: k * n, category: .workspace, ledger: ledger)
        rng.fillNormal(ut.buffer, stream: 1)
        rng.fillNormal(vt.buffer, stream: 2)
        try SVD.orthonormalize(ut, rows: m, columns: k, ledger: ledger)
        try SVD.orthonormalize(vt, rows: n, columns: k, ledger: ledger)
        var a = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                for c in 0..<k { a[i * n + j] += ut.pointer[c * m + i] * sigma[c] * vt.pointer[c * n + j] }
            }
        }
        let u0 = AlignedBuffer<Float>(count: m * k, category: .workspace, ledger: ledger)  // U₀ row-major m×k
        for i in 0..<m { for c in 0..<k { u0.pointer[i * k + c] = ut.pointer[c * m + i] } }
        return (a, u0)
    }

    @Test(
        "full SVD: U·diag(s)·Vᵀ rebuilds A, U and V are orthonormal, s are the singular values, descending",
        arguments: [(30, 12), (12, 30)])
    func full(m: Int, n: Int) throws {
        let ledger = MemoryLedger(), sigma = (0..<min(m, n)).map { Float(12 - $0) * 0.5 }
        let (a, _) = try Self.matrix(rows: m, columns: n, sigma: sigma, ledger: ledger)
        let r = try SVD.full(a, rows: m, columns: n, ledger: ledger)
        for (got, want) in zip(r.s, sigma) { #expect(abs(got - want) <= 1e-4 * sigma[0]) }
        for i in 0..<m {
            for j in 0..<n {
                let rebuilt = (0..<r.rank).reduce(Float(0)) {
                    $0 + r.u.pointer[i * r.rank + $1] * r.s[$1] * r.vt.pointer[$1 * n + j]
                }
                #expect(abs(rebuilt - a[i * n + j]) <= 1e-4 * sigma[0])
            }
        }
        for c in 0..<r.rank {
            for d in 0..<r.rank {
                let uu = (0..<m).reduce(Float(0)) { $0 + r.u.pointer[$1 * r.rank + c] * r.u.pointer[$1 * r.rank + d] }
                let vv = (0..<n).reduce(Float(0)) { $0 + r.vt.pointer[c * n + $1] * r.vt.pointer[d * n + $1] }
                #expect(abs(uu - (c == d ? 1 : 0)) <= 1e-4 && abs(vv - (c == d ? 1 : 0)) <= 1e-4)
            }
        }
    }

    /// With σᵢ = 0.7ⁱ the gap after rank 10 + 8 oversampling is 0.7⁹ ≈ 0.04 per pass; two power iterations make the
    /// leak into the found subspace ≈ 0.04⁵, so the largest principal angle to the true top-10 subspace is far below
    /// 1e-3.
    @Test("randomized SVD finds the top-r left subspace of a decaying spectrum (largest principal angle < 1e-3 rad)")
    func randomized() throws {
        let ledger = MemoryLedger(), (m, n, r) = (200, 120, 10),
            sigma = (0..<120).map { k -> Float in (0..<k).reduce(Float(1)) { p, _ in p * 0.7 } }
        let (a, u0) = try Self.matrix(rows: m, columns: n, sigma: sigma, ledger: ledger)
        let found = try SVD.randomized(
            a, rows: m, columns: n, rank: r, generator: Philox(seed: 5), stream: 0, ledger: ledger)
        for (got, want) in zip(found.s, sigma) { #expect(abs(got - want) <= 1e-4) }
        // sin of the largest principal angle = ‖(I − U₀U₀ᵀ)·U_found‖₂ (the residual, not 1 − cos², which fp32 cannot
        // resolve).
        var overlap = [Float](repeating: 0, count: r * r)  // U₀[:, :r]ᵀ·U_found
        for d in 0..<r {
            for c in 0..<r {
                var dot: Float = 0
                for i in 0..<m { dot += u0.pointer[i * n + d] * found.u.pointer[i * r + c] }
                overlap[d * r + c] = dot
            }
        }
        var residual = [Float](repeating: 0, count: m * r)
        for i in 0..<m {
            for c in 0..<r {
                var projected: Float = 0
                for d in 0..<r { projected += u0.pointer[i * n + d] * overlap[d * r + c] }
                residual[i * r + c] = found.u.pointer[i * r + c] - projected
            }
        }
        let sine = try SVD.full(residual, rows: m, columns: r, ledger: ledger).s[0]
        #expect(sine < 1e-3, "largest principal angle ≈ \(sine) rad")
    }
}
