import Llama
import TensorCore

/// Lion (Chen et al. 2023, as lion-pytorch): p ← p·(1 − η·λ) − η·sign(β₁·m + (1 − β₁)·g), then
/// m ← β₂·m + (1 − β₂)·g. One moment: 4 bytes per parameter.
public final class Lion: Optimizer {
    public let layout: ParameterLayout
    public var beta1: Float, beta2: Float
    public var groups: ParameterGroups
    public let m: AlignedBuffer<Float>

    public init(layout: ParameterLayout, beta1: Float = 0.9, beta2: Float = 0.99,
                groups: ParameterGroups = ParameterGroups(weightDecay: 0.0), ledger: MemoryLedger = .shared) {
        self.layout = layout
        self.beta1 = beta1
        self.beta2 = beta2
        self.groups = groups
        m = AlignedBuffer(count: layout.totalCount, category: .optimizerState, ledger: ledger)
    }

    public var state: [StateTensor] { [StateTensor("lion.m", m)] }


    public func update(_ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
                       learningRate lr: Float, step: Int) {
        let (b1, b2) = (beta1, beta2), keep = 1 - lr * weightDecay(id)
        nonisolated(unsafe) let (p, g, m) = (weights.baseAddress!, gradient, m.pointer + layout.parameters[id].offset)
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in  // tasks own disjoint elements
            for i in r {
                let c = b1 * m[i] + (1 - b1) * g[i]
                let sign: Float = c > 0 ? 1 : (c < 0 ? -1 : 0)  // torch.sign: sign(0) = 0
                p[i] = p[i] * keep - lr * sign
                m[i] = b2 * m[i] + (1 - b2) * g[i]
            }
        }
    }
}
