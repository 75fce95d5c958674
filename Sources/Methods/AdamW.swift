import Llama
import RealModule
import TensorCore

/// AdamW with PyTorch's semantics (`torch.optim.AdamW`): bias-corrected moments and decoupled
/// weight decay, p ← p·(1 − η·λ) − η/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
public final class AdamW: Optimizer {
    public let layout: ParameterLayout
    public var beta1: Float, beta2: Float, epsilon: Float
    public var groups: ParameterGroups
    /// Where each trainable tensor's state sits (frozen tensors have none).
    public let trainable: TrainableLayout
    /// First and second moments of the trainable tensors (8 bytes per trainable parameter).
    public let m: AlignedBuffer<Float>, v: AlignedBuffer<Float>

    public init(
        layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        groups: ParameterGroups = ParameterGroups(weightDecay: 0.01), ledger: MemoryLedger = .shared
    ) {
        self.layout = layout
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.groups = groups
        trainable = TrainableLayout(layout, groups: groups)
        m = AlignedBuffer(count: trainable.totalCount, category: .optimizerState, ledger: ledger)
        v = AlignedBuffer(count: trainable.totalCount, category: .optimizerState, ledger: ledger)
    }

    public var state: [StateTensor] { [StateTensor("adamw.m", m), StateTensor("adamw.v", v)] }

    /// One fused pass per element: 4 reads, 3 writes.
    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        guard let offset = trainable.offsets[id] else { return }  // frozen: no state, no update
        let rule = Rule(
            beta1: beta1, beta2: beta2, epsilon: epsilon, learningRate: lr, keep: 1 - lr * weightDecay(id), step: step)
        nonisolated(unsafe) let (p, g, m, v) = (weights.baseAddress!, gradient, m.pointer + offset, v.pointer + offset)
        // tasks own disjoint elements
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in rule.apply(p, g, m, v, r) }
    }

    /// Adam's elementwise step at step t with its settings fixed (also used in GaLore's projected space, by
    /// LSP-Offload's projector fit and by its host worker).
    struct Rule {
        let beta1: Float, beta2: Float, epsilon: Float, learningRate: Float
        /// η/(1 − β₁ᵗ), 1/√(1 − β₂ᵗ), and 1 − η·λ (decoupled weight decay).
        let stepSize: Float, correction2: Float, keep: Float
        /// ε inside the square root, as LSP-Offload's system code: p ← p·keep − η·(m·c₁) / √(v·c₂ + ε) with
        /// c₁ = 1/(1 − β₁ᵗ) and c₂ = 1/(1 − β₂ᵗ), in that order of operations.
        let epsilonInsideRoot: Bool
        let c1: Float, c2: Float

        init(
            beta1: Float, beta2: Float, epsilon: Float, learningRate: Float, keep: Float, step: Int,
            epsilonInsideRoot: Bool = false
        ) {
            (self.beta1, self.beta2, self.epsilon, self.keep) = (beta1, beta2, epsilon, keep)
            (self.learningRate, self.epsilonInsideRoot) = (learningRate, epsilonInsideRoot)
            stepSize = learningRate / (1 - Float.pow(beta1, step))
            correction2 = 1 / (1 - Float.pow(beta2, step)).squareRoot()
            (c1, c2) = (1 / (1 - Float.pow(beta1, step)), 1 / (1 - Float.pow(beta2, step)))
        }

        /// m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; p ← p·keep − stepSize·m/(√v·correction2 + ε), for elements `r`.
        /// With `keep` 0 and `p` the gradient's own buffer, the buffer ends holding the step.
        @inline(__always)
        func apply(
            _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
            _ v: UnsafeMutablePointer<Float>, _ r: Range<Int>
        ) {
            let (b1, b2, eps) = (beta1, beta2, epsilon)
            @inline(__always) func moments(_ i: Int) -> (m: Float, v: Float) {
                let gi = g[i]
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                return (mi, vi)
            }
            if epsilonInsideRoot {
                for i in r {
                    let (mi, vi) = moments(i)
                    p[i] = p[i] * keep - learningRate * (mi * c1) / (vi * c2 + eps).squareRoot()
                }
            } else {
                for i in r {
                    let (mi, vi) = moments(i)
                    p[i] = p[i] * keep - stepSize * mi / (vi.squareRoot() * correction2 + eps)
                }
            }
        }
    }
}
