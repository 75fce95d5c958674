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
        /// Where d(head) is added; nil when the head is not trained (its GEMM is skipped).
        public var dHead: UnsafeMutablePointer<Float>?
        /// Multiplies the gradient (1 / scored tokens for a mean loss).
        public var scale: Float

        public init(dx: UnsafeMutablePointer<Float>, dHead: UnsafeMutablePointer<Float>?, scale: Float) {
            self.dx = dx
            self.dHead = dHead
            self.scale = scale
        }
    }

    /// −log p(target) of each row (0 where the target is < 0). x [N, D], head [V, D],
    /// logits workspace [chunkRows, V]. With `bf16`, the GEMMs take bf16 operands (x and the logits' gradient
    /// rounded to nearest even) and accumulate in fp32; the softmax is fp32. Adds scale × the gradient of that sum when
    /// `gradient` is given. With a `softcap` c the logits z become c·tanh(z/c) before the softmax (Gemma 2), and their
    /// gradient is multiplied by the cap's slope 1 − tanh²(z/c).
    ///
    /// Only rows with a target are multiplied by the head: when some are masked (a prompt, a
    /// classification template), those with a target are first moved to the front of x, which this
    /// call therefore overwrites. With a gradient, each chunk's dx is then written over its own rows
    /// of x (once d(head) has used them) and added into `dx` at the rows it came from.
    public static func run(
        x: UnsafeMutablePointer<Float>, head w: GEMMOperand, bf16: BF16Workspace? = nil,
        targets: UnsafeBufferPointer<Int32>,
        rows n: Int, dim d: Int, vocab v: Int, softcap: Float? = nil, logits: UnsafeMutablePointer<Float>,
        chunkRows: Int, gradient: Gradient?
    ) -> [Double] {
        var rowLoss = [Double](repeating: 0, count: n)
        let scored = (0..<n).filter { targets[$0] >= 0 }, compacted = scored.count < n
        for (j, r) in scored.enumerated() where j != r { (x + j * d).update(from: x + r * d, count: d) }  // j < r
        var start = 0
        while start < scored.count {
            let c = min(chunkRows, scored.count - start), xc = x + start * d
            GEMM.multiply(m: c, n: v, k: d, .f32(xc), lda: d, w, ldb: d, transB: true, logits, ldc: v, workspace: bf16)
            rowLoss.withUnsafeMutableBufferPointer { lossOut in
                nonisolated(unsafe) let (logits, lossOut) = (logits, lossOut.baseAddress!)
                Parallel.forEachChunk(c, grain: 1) { rows in  // tasks own disjoint rows
                    for r in rows {
                        let row = logits + r * v, source = scored[start + r], t = Int(targets[source])
                        if let cap = softcap {  // Softcap.apply's loop, kept inline: through the call the two
                            // passes' losses differed in the last bit (ModelGradientTests' forward-only equality)
                            let inverse = 1 / cap
                            for j in 0..<v { row[j] = cap * FastMath.tanh(row[j] * inverse) }
                        }
                        let m = Vector.max(row, v), target = row[t]
                        var sum: Float = 0
                        if let cap = softcap, let g = gradient {
                            // the capped logits stay in the row for the slope: exp is taken twice
                            for j in 0..<v { sum = Relaxed.sum(sum, FastMath.exp(row[j] - m)) }
                            let k = g.scale / sum, inverse = 1 / cap
                            for j in 0..<v {
                                let u = row[j] * inverse
                                row[j] = k * FastMath.exp(row[j] - m) * (1 - u * u)
                            }
                            row[t] -= g.scale * (1 - target * inverse * target * inverse)
                        } else {
                            for j in 0..<v {
                                let e = FastMath.exp(row[j] - m)
                                row[j] = e
                                sum = Relaxed.sum(sum, e)
                            }
                            if let g = gradient {
                                let k = g.scale / sum
                                for j in 0..<v { row[j] *= k }
                                row[t] -= g.scale
                            }
                        }
                        lossOut[source] = Double(m + Float.log(sum) - target)
                    }
                }
            }
            if let g = gradient {
                // d(logits) rounded once for both products (as their A operand, in slot .a).
                let dLogits: GEMMOperand =
                    bf16.map { .bf16($0.rounded(logits, count: c * v, slot: .a)) } ?? .f32(logits)
                if let dHead = g.dHead {
                    GEMM.multiply(
                        m: v, n: d, k: c, dLogits, lda: v, transA: true, .f32(xc), ldb: d, dHead, ldc: d, beta: 1,
                        workspace: bf16)
                }
                if compacted {
                    GEMM.multiply(m: c, n: d, k: v, dLogits, lda: v, w, ldb: d, xc, ldc: d, workspace: bf16)
                } else {
                    GEMM.multiply(
                        m: c, n: d, k: v, dLogits, lda: v, w, ldb: d, g.dx + start * d, ldc: d, beta: 1, workspace: bf16
                    )
                }
            }
            start += c
        }
        if let g = gradient, compacted {
            for (j, r) in scored.enumerated() {
                let (source, dx) = (x + j * d, g.dx + r * d)
                for i in 0..<d { dx[i] += source[i] }
            }
        }
        return rowLoss
    }
}
