import Llama
import TensorCore

/// Learning LSP-Offload's projector values (§6.3): with the sketch rows fixed, Adam on the values of P and Q against
/// the relative reconstruction error L = ‖P·Pᵀ·G·Q·Qᵀ − G‖_F / ‖G‖_F of a gradient G (m×n).
///
/// With A = Pᵀ·G·Q and E = P·A·Qᵀ − G, ∂‖E‖²/∂P = 2·(E·Q·Aᵀ + G·Q·(Pᵀ·E·Q)ᵀ) and, the problem being symmetric in
/// (P, G) ↔ (Q, Gᵀ), ∂‖E‖²/∂Q = 2·(Eᵀ·P·A + Gᵀ·P·(Pᵀ·E·Q)); L's gradient is these over 2·‖E‖·‖G‖, read at each
/// row's r sketch positions.
enum ProjectorFit {
    /// L for `g`; with `residual` and `compressed`, E (m×n) and A = Pᵀ·G·Q (d×d) are left there.
    static func error(
        _ pair: SketchPair, _ g: UnsafePointer<Float>, residual: UnsafeMutablePointer<Float>? = nil,
        compressed: UnsafeMutablePointer<Float>? = nil, ledger: MemoryLedger
    ) -> Double {
        let (m, n, d) = (pair.left.count, pair.right.count, pair.size)
        let ownA = compressed == nil ? AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger) : nil
        let own = residual == nil ? AlignedBuffer<Float>(count: m * n, category: .host, ledger: ledger) : nil
        let (a, r) = (compressed ?? ownA!.pointer, residual ?? own!.pointer)
        pair.compress(g, into: a, ledger: ledger)
        r.update(repeating: 0, count: m * n)
        pair.decompress(a, scale: 1, into: r, ledger: ledger)
        var errorSquared = 0.0, norm = 0.0
        for i in 0..<m * n {
            r[i] -= g[i]
            errorSquared += Double(r[i]) * Double(r[i])
            norm += Double(g[i]) * Double(g[i])
        }
        return norm > 0 ? (errorSquared / norm).squareRoot() : 0
    }

    /// `iterations` Adam steps (rate `learningRate`) on the values of `pair` for `g`. Returns false, with the values as
    /// they were, when a step makes them or the reconstruction error non-finite.
    static func fit(
        _ pair: SketchPair, _ g: UnsafePointer<Float>, iterations: Int, learningRate: Float, ledger: MemoryLedger
    ) -> Bool {
        let (m, n, d) = (pair.left.count, pair.right.count, pair.size)
        let saved = (Array(pair.left.values.buffer), Array(pair.right.values.buffer))
        let sides = [pair.left, pair.right]
        let moments = sides.map { s in
            (
                AlignedBuffer<Float>(count: s.values.count, category: .host, ledger: ledger),
                AlignedBuffer<Float>(count: s.values.count, category: .host, ledger: ledger)
            )
        }
        let e = AlignedBuffer<Float>(count: m * n, category: .host, ledger: ledger)
        let a = AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger),
            pteq = AlignedBuffer<Float>(count: d * d, category: .host, ledger: ledger)
        let eq = AlignedBuffer<Float>(count: m * d, category: .host, ledger: ledger),
            gq = AlignedBuffer<Float>(count: m * d, category: .host, ledger: ledger)
        let pte = AlignedBuffer<Float>(count: d * n, category: .host, ledger: ledger),
            ptg = AlignedBuffer<Float>(count: d * n, category: .host, ledger: ledger)
        let gathered = AlignedBuffer<Float>(
            count: sides.map(\.values.count).max() ?? 0, category: .host, ledger: ledger)
        let gradP = AlignedBuffer<Float>(count: m * d, category: .host, ledger: ledger),
            gradQ = AlignedBuffer<Float>(count: n * d, category: .host, ledger: ledger)
        let gNorm = Double(Vector.sumOfSquares(g, m * n)).squareRoot()
        guard gNorm > 0 else { return true }
        var finite = true
        for t in 1...iterations {
            let loss = error(pair, g, residual: e.pointer, compressed: a.pointer, ledger: ledger)
            finite = loss.isFinite
            guard finite && loss > 0 else { break }
            pair.right.rightTimes(e.pointer, rows: m, into: eq.pointer)  // E·Q
            pair.right.rightTimes(g, rows: m, into: gq.pointer)  // G·Q
            pair.left.transposeTimes(eq.pointer, columns: d, into: pteq.pointer)  // Pᵀ·E·Q
            pair.left.transposeTimes(e.pointer, columns: n, into: pte.pointer)  // Pᵀ·E
            pair.left.transposeTimes(g, columns: n, into: ptg.pointer)  // Pᵀ·G
            GEMM.multiply(m: m, n: d, k: d, eq.pointer, lda: d, a.pointer, ldb: d, transB: true, gradP.pointer, ldc: d)
            GEMM.multiply(
                m: m, n: d, k: d, gq.pointer, lda: d, pteq.pointer, ldb: d, transB: true, gradP.pointer, ldc: d, beta: 1
            )
            GEMM.multiply(m: n, n: d, k: d, pte.pointer, lda: n, transA: true, a.pointer, ldb: d, gradQ.pointer, ldc: d)
            GEMM.multiply(
                m: n, n: d, k: d, ptg.pointer, lda: n, transA: true, pteq.pointer, ldb: d, gradQ.pointer, ldc: d,
                beta: 1)
            let scale = Float(1 / (loss * gNorm * gNorm))  // ∂L = ∂‖E‖²/(2·‖E‖·‖G‖), ‖E‖ = L·‖G‖, and the 2s cancel
            let rule = AdamW.Rule(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, learningRate: learningRate, keep: 1, step: t)
            for (s, (full, (mo, vo))) in zip(sides, zip([gradP, gradQ], moments)) {
                let r = s.nonzeros
                for j in 0..<s.values.count {  // the gradient of each stored value: its entry of the dense gradient
                    gathered.pointer[j] = scale * full.pointer[j / r * d + Int(s.indices.pointer[j])]
                }
                rule.apply(s.values.pointer, gathered.pointer, mo.pointer, vo.pointer, 0..<s.values.count)
            }
        }
        finite =
            finite && sides.allSatisfy { s in s.values.buffer.allSatisfy(\.isFinite) }
            && error(pair, g, ledger: ledger).isFinite
        if !finite {
            _ = pair.left.values.buffer.update(from: saved.0)
            _ = pair.right.values.buffer.update(from: saved.1)
        }
        return finite
    }

    /// The overlap of two value sets on the same sketch rows: out (d×d) = P_newᵀ·P_old (moment transfer's L or R).
    static func overlap(_ s: CountSketch, old: [Float], into out: UnsafeMutablePointer<Float>) {
        let (d, r) = (s.size, s.nonzeros)
        out.update(repeating: 0, count: d * d)
        for i in 0..<s.count {
            for k in 0..<r {
                let row = Int(s.indices.pointer[i * r + k]) * d, v = s.values.pointer[i * r + k]
                for l in 0..<r { out[row + Int(s.indices.pointer[i * r + l])] += v * old[i * r + l] }
            }
        }
    }
}

/// The full gradients of the offloaded matrices only (what a projector fit needs), summed over the passes it sees.
final class MatrixGradients: GradientSink {
    let layout: ParameterLayout
    private(set) var buffers: [ParameterID: AlignedBuffer<Float>] = [:]
    private let ledger: MemoryLedger

    init(layout: ParameterLayout, matrices: [ParameterID], ledger: MemoryLedger) {
        (self.layout, self.ledger) = (layout, ledger)
        for id in matrices {
            buffers[id] = AlignedBuffer(count: layout.parameters[id].count, category: .host, ledger: ledger)
        }
    }

    func wants(_ id: ParameterID) -> Bool { buffers[id] != nil }

    func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> {
        if let b = buffers[id] { return b.pointer }
        // a norm's, dropped
        let b = AlignedBuffer<Float>(count: layout.parameters[id].count, category: .host, ledger: ledger)
        buffers[id] = b
        return b.pointer
    }

    func finish(_ id: ParameterID) {}
}
