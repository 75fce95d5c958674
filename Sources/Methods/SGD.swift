import Llama
import TensorCore

/// SGD with momentum as `torch.optim.SGD` (L2 weight decay added to the gradient, no dampening,
/// first step initialises the buffer with the gradient): d = g + λ·p; b ← μ·b + d; p ← p − η·b.
public final class SGD: Optimizer {
    public let layout: ParameterLayout
    public var momentum: Float
    public var groups: ParameterGroups
    /// Where each trainable tensor's state sits (frozen tensors have none).
    public let trainable: TrainableLayout
    /// Momentum buffers (4 bytes per trainable parameter; none when momentum is 0).
    public let buffer: AlignedBuffer<Float>?

    public init(
        layout: ParameterLayout, momentum: Float = 0.9, groups: ParameterGroups = ParameterGroups(weightDecay: 0),
        ledger: MemoryLedger = .shared
    ) {
        self.layout = layout
        self.momentum = momentum
        self.groups = groups
        trainable = TrainableLayout(layout, groups: groups)
        buffer =
            momentum > 0 ? AlignedBuffer(count: trainable.totalCount, category: .optimizerState, ledger: ledger) : nil
    }

    public var state: [StateTensor] { buffer.map { [StateTensor("sgd.momentum", $0)] } ?? [] }

    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        guard let offset = trainable.offsets[id] else { return }  // frozen: no state, no update
        let (mu, wd, first) = (momentum, weightDecay(id), step == 1)
        nonisolated(unsafe) let (p, g) = (weights.baseAddress!, gradient)
        nonisolated(unsafe) let b = buffer.map { $0.pointer + offset }
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in  // tasks own disjoint elements
            for i in r {
                let d = g[i] + wd * p[i]
                if let b {
                    b[i] = first ? d : mu * b[i] + d
                    p[i] -= lr * b[i]
                } else {
                    p[i] -= lr * d
                }
            }
        }
    }
}
