import Llama
import TensorCore

/// Lion (Chen et al. 2023, as lion-pytorch): p ← p·(1 − η·λ) − η·sign(β₁·m + (1 − β₁)·g), then
/// m ← β₂·m + (1 − β₂)·g. One moment: 4 bytes per parameter.
public final class Lion: Optimizer {
    public let layout: ParameterLayout
    public var beta1: Float, beta2: Float
    public var groups: ParameterGroups
    /// Where each trainable tensor's state sits (frozen tensors have none).
    public let trainable: TrainableLayout
    public let m: AlignedBuffer<Float>

    public init(
        layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.99,
        groups: ParameterGroups = ParameterGroups(weightDecay: 0.0), ledger: MemoryLedger = .shared
    ) {
        self.layout = layout
        self.beta1 = beta1
        self.beta2 = beta2
        self.groups = groups
        trainable = TrainableLayout(layout, groups: groups)
        m = AlignedBuffer(count: trainable.totalCount, category: .optimizerState, ledger: ledger)
    }

    public var state: [StateTensor] { [StateTensor("lion.m", m)] }

    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        guard let offset = trainable.offsets[id] else { return }  // frozen: no state, no update
        let rule = Rule(beta1: beta1, beta2: beta2, learningRate: lr, keep: 1 - lr * weightDecay(id))
        nonisolated(unsafe) let (p, g, m) = (weights.baseAddress!, gradient, m.pointer + offset)
        // tasks own disjoint elements
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in rule.apply(p, g, m, r) }
    }

    /// Lion's elementwise step with its settings fixed.
    struct Rule {
        let beta1: Float, beta2: Float, learningRate: Float
        /// 1 − η·λ (decoupled weight decay).
        let keep: Float

        /// c = β₁·m + (1 − β₁)·g; p ← p·keep − η·sign(c); m ← β₂·m + (1 − β₂)·g, for elements `r`.
        @inline(__always)
        func apply(
            _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
            _ r: Range<Int>
        ) {
            let (b1, b2, lr) = (beta1, beta2, learningRate)
            for i in r {
                let c = b1 * m[i] + (1 - b1) * g[i]
                let sign: Float = c > 0 ? 1 : (c < 0 ? -1 : 0)  // torch.sign: sign(0) = 0
                p[i] = p[i] * keep - lr * sign
                m[i] = b2 * m[i] + (1 - b2) * g[i]
            }
        }
    }
}
