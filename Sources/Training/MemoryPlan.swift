import Llama
import Methods
import TensorCore

/// Bytes per ledger category that a training run will use, predicted from shapes alone.
public enum MemoryPlan {
    public static func estimate(_ c: LlamaConfig, options o: TrainingOptions, threads: Int = Parallel.threadCount) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c), params = layout.totalCount
        if o.method.isZerothOrder {  // the forward-only path: weights, one layer's buffers, DiZO's anchors
            var plan = LlamaModel.passMemory(c, batch: o.batchSize * o.objective.sequencesPerExample, length: o.maxLength, training: nil, threads: threads)
            plan[.weights] = 4 * params
            let set = o.method == .dizo ? o.zerothOrder.projection.set : .none
            plan[.optimizerState] = 4 * layout.parameters.filter { set.contains($0.role) && !o.groups.isFrozen($0.role) }.reduce(0) { $0 + $1.count }
            return plan
        }
        var plan = LlamaModel.passMemory(c, batch: o.batchSize, length: o.maxLength, training: o.checkpointing, threads: threads)
        if o.method == .qft {
            let state = QFT.stateBytes(layout, settings: o.qft, fusedGradientFloats: fusedGradientPeak(layout, tied: c.tiedEmbeddings))
            return plan.merging(state, uniquingKeysWith: +)
        }
        plan[.weights] = 4 * params
        plan[.gradients] = 4 * (o.isFused ? fusedGradientPeak(layout, tied: c.tiedEmbeddings) : params)
        if o.method == .lspOffload {  // its gradients are compressed, its optimizer state lives on the host
            plan[.gradients] = nil
            return plan.merging(LSPOffload.memory(layout, settings: o.lsp, groups: o.groups, tokens: o.batchSize * o.maxLength), uniquingKeysWith: +)
        }
        switch o.method {
        case .galore, .adarankgrad:  // at the largest rank: AdaRankGrad's ranks only fall from there
            plan[.optimizerState] = LowRankAdam.stateBytes(layout, rank: o.lowRank.maxRank, groups: o.groups)
            plan[.workspace, default: 0] += LowRankAdam.workspaceBytes(layout, settings: o.lowRank)
        default:
            plan[.optimizerState] = 4 * params * (o.method == .adamw || o.method == .adamwFused ? 2 : 1)
        }
        return plan
    }

    /// Floats of gradient alive at once with fused updates: the head (the embedding when tied, kept until
    /// the end) during the loss, then one layer's tensors next to it, finally the embedding.
    static func fusedGradientPeak(_ layout: ParameterLayout, tied: Bool) -> Int {
        let count = { (id: ParameterID) in layout.parameters[id].count }
        let layer = layout.layers.map { $0.all.reduce(0) { $0 + count($1) } }.max() ?? 0
        let embedding = count(layout.embedding)
        return max(count(layout.head), (tied ? embedding : 0) + layer, embedding)
    }
}
