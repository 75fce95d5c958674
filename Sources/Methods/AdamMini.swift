import Llama
import TensorCore

/// Adam-mini (Zhang et al. 2024, "Adam-mini: Use Fewer Learning Rates To Gain More"; the partition of its code from
/// v1.1): Adam's first moment for every weight, but one second moment per block of weights whose Hessian block is
/// dense. Blocks: a row (one token) of the embedding and head, a head's rows of the query and key, a row (one output
/// neuron) of the attention output and the MLP matrices, and the whole tensor for the value and the norms. The state
/// is 4 bytes per parameter plus one float per block, against AdamW's 8.
///
/// Per block b of size n at step t: v_b ← β₂v_b + (1 − β₂)·mean_b(g²); for its elements
/// m ← β₁m + (1 − β₁)g and p ← p·(1 − ηλ) − η/(1 − β₁ᵗ) · m / (√v_b / √(1 − β₂ᵗ) + ε).
public final class AdamMini: Optimizer {
    public let layout: ParameterLayout
    public var beta1: Float, beta2: Float, epsilon: Float
    public var groups: ParameterGroups
    /// Where each trainable tensor's first moment sits (frozen tensors have none).
    public let trainable: TrainableLayout
    /// Per tensor: weights per block (a divisor of its count) and the index of its first block in ``v``.
    public let blocks: [(size: Int, first: Int)]
    /// First moments (one per trainable weight) and second moments (one per block).
    public let m: AlignedBuffer<Float>, v: AlignedBuffer<Float>

    /// - Parameter blockSize: weights per block of a tensor; ``blockSize(_:headDimension:)`` by default.
    public init(
        layout: ParameterLayout, headDimension: Int, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        groups: ParameterGroups = ParameterGroups(weightDecay: 0), ledger: MemoryLedger = .shared,
        blockSize: ((ParameterInfo) -> Int)? = nil
    ) {
        (self.layout, self.beta1, self.beta2, self.epsilon, self.groups) = (layout, beta1, beta2, epsilon, groups)
        trainable = TrainableLayout(layout, groups: groups)
        var first = 0
        blocks = layout.parameters.map { info in
            let size = blockSize?(info) ?? Self.blockSize(info, headDimension: headDimension)
            defer { if !groups.isFrozen(info.role) { first += info.count / size } }
            return (size, first)
        }
        m = AlignedBuffer(count: trainable.totalCount, category: .optimizerState, ledger: ledger)
        v = AlignedBuffer(count: max(1, first), category: .optimizerState, ledger: ledger)
    }

    /// Weights per block of `info` in Adam-mini's partition (every block size divides the tensor's count).
    public static func blockSize(_ info: ParameterInfo, headDimension: Int) -> Int {
        switch info.role {
        case .query, .key: headDimension * info.shape[1]
        case .embedding, .head, .output, .gate, .up, .down: info.shape[1]
        case .value, .attentionNorm, .ffnNorm, .finalNorm, .queryBias, .keyBias, .valueBias, .queryNorm, .keyNorm,
            .attentionOutputNorm, .ffnOutputNorm:
            info.count
        }
    }

    /// Blocks of the trainable tensors of `layout`: the floats of ``v``.
    public static func blockCount(_ layout: ParameterLayout, headDimension: Int, groups: ParameterGroups) -> Int {
        layout.parameters.filter { !groups.isFrozen($0.role) }.reduce(0) {
            $0 + $1.count / blockSize($1, headDimension: headDimension)
        }
    }

    public var state: [StateTensor] { [StateTensor("adam-mini.m", m), StateTensor("adam-mini.v", v)] }

    /// Blocks in parallel: the block's mean square, then one pass over its weights.
    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        guard let offset = trainable.offsets[id] else { return }  // frozen: no state, no update
        let (size, first) = blocks[id], (b1, b2, eps) = (beta1, beta2, epsilon)
        let keep = 1 - lr * weightDecay(id), stepSize = lr / (1 - Float.pow(beta1, step))
        let correction2 = 1 / (1 - Float.pow(beta2, step)).squareRoot()
        nonisolated(unsafe) let (p, g, m, v) = (weights.baseAddress!, gradient, m.pointer + offset, v.pointer + first)
        Parallel.forEachChunk(weights.count / size, grain: max(1, (1 << 15) / size)) { blocks in  // disjoint blocks
            for k in blocks {
                let r = k * size..<(k + 1) * size
                var squares: Double = 0
                for i in r { squares += Double(g[i] * g[i]) }
                let vk = b2 * v[k] + (1 - b2) * Float(squares / Double(size))
                v[k] = vk
                let scale = stepSize / (vk.squareRoot() * correction2 + eps)
                for i in r {
                    let mi = b1 * m[i] + (1 - b1) * g[i]
                    m[i] = mi
                    p[i] = p[i] * keep - scale * mi
                }
            }
        }
    }
}
