import Llama
import RealModule
import TensorCore

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`): bias-corrected moments and decoupled
/// weight decay, p ← p·(1 − η·λ) − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
public final class AdamW: Optimizer {
    public let layout: ParameterLayout
    public var beta1: Float, beta2: Float, epsilon: Float
    public var groups: ParameterGroups
    /// First and second moments, laid out like the parameters (8 bytes per parameter).
    public let m: AlignedBuffer<Float>, v: AlignedBuffer<Float>

    public init(layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                groups: ParameterGroups = ParameterGroups(weightDecay: 0.01), ledger: MemoryLedger = .shared) {
        self.layout = layout
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.groups = groups
        m = AlignedBuffer(count: layout.totalCount, category: .optimizerState, ledger: ledger)
        v = AlignedBuffer(count: layout.totalCount, category: .optimizerState, ledger: ledger)
    }

    public var state: [StateTensor] { [StateTensor("adamw.m", m), StateTensor("adamw.v", v)] }


    /// One fused pass per element: 4 reads, 3 writes.
    public func update(_ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
                       learningRate lr: Float, step: Int) {
        let offset = layout.parameters[id].offset
        let (b1, b2, eps) = (beta1, beta2, epsilon)
        let keep = 1 - lr * weightDecay(id)
        let stepSize = lr / (1 - Float.pow(b1, step))
        let correction2 = 1 / (1 - Float.pow(b2, step)).squareRoot()
        nonisolated(unsafe) let (p, g, m, v) = (weights.baseAddress!, gradient, m.pointer + offset, v.pointer + offset)
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in  // tasks own disjoint elements
            for i in r {
                let gi = g[i]
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] = p[i] * keep - stepSize * mi / (vi.squareRoot() * correction2 + eps)
            }
        }
    }
}
