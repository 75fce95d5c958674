import Llama
import TensorCore

/// AdamW state for a chosen set of tensors only, one pair of moment buffers per tensor (the methods that project
/// or offload the block matrices keep plain AdamW for what is left: norms, embeddings, head).
final class TensorAdamW {
    let beta1: Float, beta2: Float, epsilon: Float
    private(set) var moments: [ParameterID: (m: AlignedBuffer<Float>, v: AlignedBuffer<Float>)] = [:]

    init(
        _ layout: ParameterLayout, tensors: [ParameterID], beta1: Float, beta2: Float, epsilon: Float,
        ledger: MemoryLedger
    ) {
        (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        for id in tensors {
            let n = layout.parameters[id].count
            moments[id] = (
                AlignedBuffer(count: n, category: .optimizerState, ledger: ledger),
                AlignedBuffer(count: n, category: .optimizerState, ledger: ledger)
            )
        }
    }

    func contains(_ id: ParameterID) -> Bool { moments[id] != nil }

    /// One AdamW step of tensor `id` (its moments must exist).
    func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate: Float, keep: Float, step: Int
    ) {
        let (m, v) = moments[id]!
        let rule = AdamW.Rule(
            beta1: beta1, beta2: beta2, epsilon: epsilon, learningRate: learningRate, keep: keep, step: step)
        nonisolated(unsafe) let (p, g, mp, vp) = (weights.baseAddress!, gradient, m.pointer, v.pointer)
        Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in rule.apply(p, g, mp, vp, r) }
    }

    /// The moments of `id` as checkpoint tensors.
    func state(_ id: ParameterID, name: String) -> [StateTensor] {
        moments[id].map { [StateTensor("adamw.m." + name, $0.m), StateTensor("adamw.v." + name, $0.v)] } ?? []
    }

    var bytes: Int { moments.values.reduce(0) { $0 + 4 * ($1.m.count + $1.v.count) } }
}
