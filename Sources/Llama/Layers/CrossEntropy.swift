import RealModule
import TensorCore

/// Next-token cross-entropy through the LM head, computed a chunk of rows at a time so the full
/// [N, V] logits never exist: per chunk, logits = x·Wᵀ, per-row log-softmax, and (when training)
/// dlogits = scale·(softmax − onehot) folded straight into dx and dW by two GEMMs.
public enum CrossEntropy {
    /// The gradient outputs of ``run(x:head:targets:rows:dim:vocab:logits:chunkRows:gradient:)``.
    public struct Gradient {
        /// [N, D], added into.
        public var dx: UnsafeMutablePointer<Float>
        /// [V, D], added into.
        public var dHead: UnsafeMutablePointer<Float>
        /// Multiplies the gradient (1 / scored tokens for a mean loss).
        public var scale: Float

        public init(dx: UnsafeMutablePointer<Float>, dHead: UnsafeMutablePointer<Float>, scale: Float) {
            self.dx = dx
            self.dHead = dHead
            self.scale = scale
        }
    }

    /// −log p(target) of each row (0 where the target is < 0). x [N, D], head [V, D],
    /// logits workspace [chunkRows, V]. Adds scale × the gradient of that sum when `gradient` is given.
    public static func run(
        x: UnsafePointer<Float>, head w: UnsafePointer<Float>, targets: UnsafeBufferPointer<Int32>,
        rows n: Int, dim d: Int, vocab v: Int, logits: UnsafeMutablePointer<Float>, chunkRows: Int,
        gradient: Gradient?
    ) -> [Double] {
        var rowLoss = [Double](repeating: 0, count: n)
        var start = 0
        while start < n {
            let c = min(chunkRows, n - start)
            GEMM.multiply(m: c, n: v, k: d, x + start * d, lda: d, w, ldb: d, transB: true, logits, ldc: v)
            rowLoss.withUnsafeMutableBufferPointer { lossOut in
                nonisolated(unsafe) let (logits, lossOut, targets) = (logits, lossOut.baseAddress!, targets)
                Parallel.forEachChunk(c, grain: 1) { rows in  // tasks own disjoint rows
                    for r in rows {
                        let row = logits + r * v, t = Int(targets[start + r])
                        guard t >= 0 else {
                            if gradient != nil { row.update(repeating: 0, count: v) }
                            continue
                        }
                        let m = Vector.max(row, v), target = row[t]
                        var sum: Float = 0
                        for j in 0..<v {
                            let e = FastMath.exp(row[j] - m)
                            row[j] = e
                            sum = Relaxed.sum(sum, e)
                        }
                        lossOut[start + r] = Double(m + Float.log(sum) - target)
                        if let g = gradient {
                            let k = g.scale / sum
                            for j in 0..<v { row[j] *= k }
                            row[t] -= g.scale
                        }
                    }
                }
            }
            if let g = gradient {
                GEMM.multiply(m: c, n: d, k: v, logits, lda: v, w, ldb: d, g.dx + start * d, ldc: d, beta: 1)
                GEMM.multiply(m: v, n: d, k: c, logits, lda: v, transA: true, x + start * d, ldb: d,
                              g.dHead, ldc: d, beta: 1)
            }
            start += c
        }
        return rowLoss
    }
}
