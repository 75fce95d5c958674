import TensorCore

/// One block matrix's low-rank subspace and the Adam moments that live in it (see ``LowRankAdam``). The side
/// of the matrix with fewer values is projected: rows < columns keeps P (rows×r) and moments of r×columns;
/// otherwise P is r rows of Vᵀ (r×columns) and the moments are rows×r.
final class Subspace {
    let rows: Int, columns: Int
    private(set) var projector: AlignedBuffer<Float>
    private(set) var m: AlignedBuffer<Float>, v: AlignedBuffer<Float>
    /// Adam steps taken in any subspace (bias correction), and steps since the last refresh; checkpointed.
    let counters: AlignedBuffer<Int32>
    private let ledger: MemoryLedger

    init(rows: Int, columns: Int, ledger: MemoryLedger) {
        (self.rows, self.columns, self.ledger) = (rows, columns, ledger)
        projector = AlignedBuffer(count: 0, category: .optimizerState, ledger: ledger)
        (m, v) = (projector, projector)
        counters = AlignedBuffer(count: 2, category: .optimizerState, ledger: ledger)
    }

    var left: Bool { rows < columns }
    /// Projector floats per unit of rank, and moment floats per unit of rank.
    var side: Int { left ? rows : columns }
    var other: Int { left ? columns : rows }
    var rank: Int { projector.count / side }
    var steps: Int {
        get { Int(counters.pointer[0]) }
        set { counters.pointer[0] = Int32(newValue) }
    }
    var sinceRefresh: Int {
        get { Int(counters.pointer[1]) }
        set { counters.pointer[1] = Int32(newValue) }
    }

    /// Empty buffers of `rank` (before a checkpoint of that rank is read into them).
    func resize(rank: Int) {
        projector = AlignedBuffer(count: rank * side, category: .optimizerState, ledger: ledger)
        m = AlignedBuffer(count: rank * other, category: .optimizerState, ledger: ledger)
        v = AlignedBuffer(count: rank * other, category: .optimizerState, ledger: ledger)
    }

    /// R = Pᵀ·G (r×columns) or G·Pᵀ (rows×r).
    func project(_ g: UnsafePointer<Float>) -> AlignedBuffer<Float> {
        let r = rank, out = AlignedBuffer<Float>(count: r * other, category: .workspace, ledger: ledger)
        if left {
            GEMM.multiply(
                m: r, n: columns, k: rows, projector.pointer, lda: r, transA: true, g, ldb: columns, out.pointer,
                ldc: columns)
        } else {
            GEMM.multiply(
                m: rows, n: r, k: columns, g, lda: columns, projector.pointer, ldb: columns, transB: true, out.pointer,
                ldc: r)
        }
        return out
    }

    /// w += α·P·d (or α·d·P): a step of the moments' shape taken back to the matrix.
    func addBack(_ d: UnsafePointer<Float>, scale: Float, into w: UnsafeMutablePointer<Float>) {
        let r = rank
        if left {
            GEMM.multiply(
                m: rows, n: columns, k: r, projector.pointer, lda: r, d, ldb: columns, w, ldc: columns, alpha: scale,
                beta: 1)
        } else {
            GEMM.multiply(
                m: rows, n: columns, k: r, d, lda: r, projector.pointer, ldb: columns, w, ldc: columns, alpha: scale,
                beta: 1)
        }
    }

    /// The top `rank` singular vectors of `svd` as the new projector. With `transfer`, the moments move into it
    /// (M ← R·M, V ← (R⊙R)·V with R = P_newᵀ·P_old; the mirror image for a right projector); without, they stay
    /// when the rank does and start from zero when it changes.
    func replace(with svd: SVDResult, rank: Int, transfer: Bool) {
        let old = (p: projector, m: m, v: v, rank: self.rank)
        let p = AlignedBuffer<Float>(count: rank * side, category: .optimizerState, ledger: ledger)
        if left {
            for i in 0..<rows { (p.pointer + i * rank).update(from: svd.u.pointer + i * svd.rank, count: rank) }
        } else {
            p.pointer.update(from: svd.vt.pointer, count: rank * columns)
        }
        projector = p
        sinceRefresh = 0
        if old.rank > 0, transfer {
            let r = AlignedBuffer<Float>(count: rank * old.rank, category: .workspace, ledger: ledger)
            if left {
                GEMM.multiply(
                    m: rank, n: old.rank, k: rows, p.pointer, lda: rank, transA: true, old.p.pointer, ldb: old.rank,
                    r.pointer, ldc: old.rank)
            } else {
                GEMM.multiply(
                    m: rank, n: old.rank, k: columns, p.pointer, lda: columns, old.p.pointer, ldb: columns,
                    transB: true, r.pointer, ldc: old.rank)
            }
            let squared = AlignedBuffer<Float>(count: r.count, category: .workspace, ledger: ledger)
            for i in 0..<r.count { squared.pointer[i] = r.pointer[i] * r.pointer[i] }
            m = rotate(old.m, by: r, from: old.rank, to: rank)
            v = rotate(old.v, by: squared, from: old.rank, to: rank)
        } else if old.rank != rank {  // the first subspace, or a new rank without transfer: moments from zero
            m = AlignedBuffer(count: rank * other, category: .optimizerState, ledger: ledger)
            v = AlignedBuffer(count: rank * other, category: .optimizerState, ledger: ledger)
        }  // else GaLore: the same rank, the moments stay as they are
    }

    /// R·X (left: X is r_old×columns) or X·Rᵀ (right: X is rows×r_old), R being r_new×r_old.
    private func rotate(
        _ x: AlignedBuffer<Float>, by r: AlignedBuffer<Float>, from old: Int, to new: Int
    ) -> AlignedBuffer<Float> {
        let out = AlignedBuffer<Float>(count: new * other, category: .optimizerState, ledger: ledger)
        if left {
            GEMM.multiply(
                m: new, n: columns, k: old, r.pointer, lda: old, x.pointer, ldb: columns, out.pointer, ldc: columns)
        } else {
            GEMM.multiply(
                m: rows, n: new, k: old, x.pointer, lda: old, r.pointer, ldb: old, transB: true, out.pointer, ldc: new)
        }
        return out
    }
}
