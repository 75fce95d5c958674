@preconcurrency import CBLAS

/// A LAPACK routine that failed (e.g. an SVD that did not converge).
public struct LinearAlgebraError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// A thin singular value decomposition A ≈ U·diag(s)·Vᵀ of a row-major m×n matrix, truncated to `rank`:
/// U is m×rank, Vᵀ is rank×n (both row-major), s descending.
public struct SVDResult {
    public let rows: Int, columns: Int, rank: Int
    public let u: AlignedBuffer<Float>
    public let s: [Float]
    public let vt: AlignedBuffer<Float>

    public init(rows: Int, columns: Int, rank: Int, u: AlignedBuffer<Float>, s: [Float], vt: AlignedBuffer<Float>) {
        precondition(
            u.count == rows * rank && vt.count == rank * columns && s.count == rank,
            "SVDResult: factors do not match \(rows)×\(columns) at rank \(rank)")
        (self.rows, self.columns, self.rank, self.u, self.s, self.vt) = (rows, columns, rank, u, s, vt)
    }
}

/// Singular value decompositions through LAPACK. LAPACK is column-major: a row-major m×n matrix is the
/// column-major n×m matrix Aᵀ = V·S·Uᵀ, so LAPACK's U and Vᵀ of that matrix are this matrix's Vᵀ and U as stored.
public enum SVD {
    /// The thin SVD (rank min(m, n)) by divide and conquer (`sgesdd_`). `a` is not changed.
    public static func full(
        _ a: UnsafePointer<Float>, rows m: Int, columns n: Int, ledger: MemoryLedger = .shared
    ) throws -> SVDResult {
        _ = BLASCore.adjustment
        let k = min(m, n)
        let copy = AlignedBuffer<Float>(count: m * n, category: .workspace, ledger: ledger)
        copy.pointer.update(from: a, count: m * n)
        let u = AlignedBuffer<Float>(count: m * k, category: .workspace, ledger: ledger)
        let vt = AlignedBuffer<Float>(count: k * n, category: .workspace, ledger: ledger)
        var s = [Float](repeating: 0, count: k)
        var jobz = Int8(UInt8(ascii: "S")), (rows, cols, ldu, ldvt) = (Int32(n), Int32(m), Int32(n), Int32(k))
        var iwork = [Int32](repeating: 0, count: 8 * k), info: Int32 = 0, lwork: Int32 = -1, query: Float = 0
        // LAPACK's M×N = n×m column-major; its U (n×k) is our Vᵀ, its Vᵀ (k×m) is our U.
        sgesdd_(
            &jobz, &rows, &cols, copy.pointer, &rows, &s, vt.pointer, &ldu, u.pointer, &ldvt, &query, &lwork, &iwork,
            &info, 1)
        lwork = Int32(query)
        let work = AlignedBuffer<Float>(count: Int(lwork), category: .workspace, ledger: ledger)
        sgesdd_(
            &jobz, &rows, &cols, copy.pointer, &rows, &s, vt.pointer, &ldu, u.pointer, &ldvt, work.pointer, &lwork,
            &iwork, &info, 1)
        guard info == 0 else {
            throw LinearAlgebraError(
                message:
                    """
                    sgesdd of a \(m)×\(n) matrix failed (info \(info): \
                    \(info > 0 ? "did not converge" : "bad argument \(-info)"))
                    """
            )
        }
        return SVDResult(rows: m, columns: n, rank: k, u: u, s: s, vt: vt)
    }

    /// The top-`rank` SVD by randomized range finding (Halko, Martinsson & Tropp 2011): Y = A·Ω for a Gaussian n×(rank
    /// + p) sketch Ω, `powerIterations` rounds of Y ← A·(Aᵀ·Y) with re-orthonormalisation (QR by
    /// `sgeqrf_`/`sorgqr_`), then the exact SVD of the small (rank + p)×n matrix Qᵀ·A. Cost O(m·n·(rank +
    /// p)·(2q + 2)) instead of O(m·n·min(m, n)).
    public static func randomized(
        _ a: UnsafePointer<Float>, rows m: Int, columns n: Int, rank: Int, oversampling p: Int = 8,
        powerIterations q: Int = 2,
        generator: Philox, stream: UInt64, ledger: MemoryLedger = .shared
    ) throws -> SVDResult {
        let k = min(rank + p, m, n)
        precondition(rank >= 1 && rank <= k, "SVD.randomized: rank \(rank) of a \(m)×\(n) matrix")
        // Bases are kept transposed: row-major Yᵀ (k×m) is column-major Y (m×k), the layout QR works on.
        let omega = AlignedBuffer<Float>(count: k * n, category: .workspace, ledger: ledger)
        generator.fillNormal(omega.buffer, stream: stream)
        let yt = AlignedBuffer<Float>(count: k * m, category: .workspace, ledger: ledger)
        let zt = AlignedBuffer<Float>(count: k * n, category: .workspace, ledger: ledger)
        // Yᵀ = Ωᵀ·Aᵀ
        GEMM.multiply(m: k, n: m, k: n, omega.pointer, lda: n, a, ldb: n, transB: true, yt.pointer, ldc: m)
        try orthonormalize(yt, rows: m, columns: k, ledger: ledger)
        for _ in 0..<q {
            GEMM.multiply(m: k, n: n, k: m, yt.pointer, lda: m, a, ldb: n, zt.pointer, ldc: n)  // Zᵀ = Qᵀ·A
            try orthonormalize(zt, rows: n, columns: k, ledger: ledger)
            // Yᵀ = Zᵀ·Aᵀ
            GEMM.multiply(m: k, n: m, k: n, zt.pointer, lda: n, a, ldb: n, transB: true, yt.pointer, ldc: m)
            try orthonormalize(yt, rows: m, columns: k, ledger: ledger)
        }
        GEMM.multiply(m: k, n: n, k: m, yt.pointer, lda: m, a, ldb: n, zt.pointer, ldc: n)  // B = Qᵀ·A (k×n)
        let small = try full(zt.pointer, rows: k, columns: n, ledger: ledger)
        let u = AlignedBuffer<Float>(count: m * rank, category: .workspace, ledger: ledger)
        // U = Q·U_B, first `rank` columns: (m×k) = (Qᵀ)ᵀ·U_B, U_B is k×k row-major.
        GEMM.multiply(
            m: m, n: rank, k: k, yt.pointer, lda: m, transA: true, small.u.pointer, ldb: k, u.pointer, ldc: rank)
        let vt = AlignedBuffer<Float>(count: rank * n, category: .workspace, ledger: ledger)
        vt.pointer.update(from: small.vt.pointer, count: rank * n)
        return SVDResult(rows: m, columns: n, rank: rank, u: u, s: Array(small.s.prefix(rank)), vt: vt)
    }

    /// Floats of scratch ``full(_:rows:columns:ledger:)`` allocates at once (the copy, U, Vᵀ and LAPACK's workspace, as
    /// LAPACK itself reports it).
    public static func fullScratchFloats(rows m: Int, columns n: Int) -> Int {
        let k = min(m, n)
        var jobz = Int8(UInt8(ascii: "S")), (rows, cols, ldvt) = (Int32(n), Int32(m), Int32(k))
        var iwork = [Int32](repeating: 0, count: 8 * k), info: Int32 = 0, lwork: Int32 = -1, query: Float = 0
        // not read by a workspace query
        var (a, u, vt, s) = (Float(0), Float(0), Float(0), [Float](repeating: 0, count: k))
        var ldu = rows
        sgesdd_(&jobz, &rows, &cols, &a, &ldu, &s, &u, &ldu, &vt, &ldvt, &query, &lwork, &iwork, &info, 1)
        return m * n + m * k + k * n + Int(query)
    }

    /// Floats of scratch ``randomized(_:rows:columns:rank:oversampling:powerIterations:generator:stream:ledger:)``
    /// allocates at its peak, its result included.
    public static func randomizedScratchFloats(rows m: Int, columns n: Int, rank: Int, oversampling p: Int = 8) -> Int {
        let k = min(rank + p, m, n)
        var (mm, kk, info, lwork) = (Int32(max(m, n)), Int32(k), Int32(0), Int32(-1))
        var tau = [Float](repeating: 0, count: k), q1: Float = 0, q2: Float = 0, dummy: Float = 0
        sgeqrf_(&mm, &kk, &dummy, &mm, &tau, &q1, &lwork, &info)
        sorgqr_(&mm, &kk, &kk, &dummy, &mm, tau, &q2, &lwork, &info)
        let sketches = 2 * k * n + k * m  // Ω, Yᵀ, Zᵀ
        let small = min(k, n)
        return sketches
            + max(
                Int(max(q1, q2, 1)), fullScratchFloats(rows: k, columns: n), k * small + small * n + m * rank + rank * n
            )
    }

    /// Replaces the column-major rows×columns matrix in `x` (row-major columns×rows) with an orthonormal basis of its
    /// column space (the Q of its QR decomposition).
    static func orthonormalize(_ x: AlignedBuffer<Float>, rows: Int, columns: Int, ledger: MemoryLedger) throws {
        var (m, n, k, lda, info, lwork) = (
            Int32(rows), Int32(columns), Int32(columns), Int32(rows), Int32(0), Int32(-1)
        )
        var tau = [Float](repeating: 0, count: columns), query: Float = 0, query2: Float = 0
        sgeqrf_(&m, &n, x.pointer, &lda, &tau, &query, &lwork, &info)
        sorgqr_(&m, &n, &k, x.pointer, &lda, tau, &query2, &lwork, &info)
        lwork = Int32(max(query, query2, 1))
        let work = AlignedBuffer<Float>(count: Int(lwork), category: .workspace, ledger: ledger)
        sgeqrf_(&m, &n, x.pointer, &lda, &tau, work.pointer, &lwork, &info)
        guard info == 0 else {
            throw LinearAlgebraError(message: "sgeqrf of a \(rows)×\(columns) matrix failed (info \(info))")
        }
        sorgqr_(&m, &n, &k, x.pointer, &lda, tau, work.pointer, &lwork, &info)
        guard info == 0 else {
            throw LinearAlgebraError(message: "sorgqr of a \(rows)×\(columns) matrix failed (info \(info))")
        }
    }
}
