import Llama
import Methods
import TensorCore

/// Bytes per ledger category that a training run will use, predicted from shapes alone.
public enum MemoryPlan {
    public static func estimate(
        _ c: LlamaConfig, options o: TrainingOptions, threads: Int = Parallel.threadCount
    ) -> [MemoryCategory: Int] {
        var plan = methodEstimate(c, options: o, threads: threads)
        if o.precision.kernel.kernel != nil {  // bf16 compute: the operands rounded for the GEMMs
            let format = o.weightFormat, zerothOrder = o.method.isZerothOrder
            let roundsWeights = format != .bf16 || (zerothOrder && format == .bf16)  // ZO on bf16: perturbed as read
            plan[.workspace, default: 0] += LlamaModel.bf16ScratchBytes(
                c, batch: o.batchSize * (zerothOrder ? o.objective.sequencesPerExample : 1), length: o.maxLength,
                training: !zerothOrder, roundsWeights: roundsWeights,
                formsWeightGradients: o.method != .lspOffload || o.lsp.trainEmbeddings)  // LSP compresses the factors
        }
        return plan
    }

    /// What a store of `format` holds for `layout` (QFT's INT8 store is planned with its method).
    static func weightBytes(_ layout: ParameterLayout, _ format: TrainingOptions.WeightFormat) -> [MemoryCategory: Int]
    {
        format == .bf16 ? BF16ParameterStore.bytes(layout) : [.weights: 4 * layout.totalCount]
    }

    /// The method's bytes besides the bf16 GEMMs' operand scratch (activations as the precision keeps them).
    static func methodEstimate(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c), params = layout.totalCount, weights = weightBytes(layout, o.weightFormat)
        if o.method.isZerothOrder {  // the forward-only path: weights, one layer's buffers, DiZO's anchors
            var plan = LlamaModel.passMemory(
                c, batch: o.batchSize * o.objective.sequencesPerExample, length: o.maxLength, training: nil,
                bf16: o.precision.kernel.kernel != nil, threads: threads)
            plan.merge(weights, uniquingKeysWith: +)
            if o.weightFormat != .fp32 {  // perturbed as read: the fp32 copy of a perturbed tensor read as floats
                let floats = o.precision.kernel.kernel != nil ? c.dim : BF16ParameterStore.workspaceCount(layout)
                plan[.workspace, default: 0] += 4 * floats
            }
            let set = o.method == .dizo ? o.zerothOrder.projection.set : .none
            plan[.optimizerState] =
                4
                * layout.parameters.filter { set.contains($0.role) && !o.groups.isFrozen($0.role) }.reduce(0) {
                    $0 + $1.count
                }
            return plan
        }
        var plan = LlamaModel.passMemory(
            c, batch: o.batchSize, length: o.maxLength, training: o.checkpointing,
            bf16: o.precision.kernel.kernel != nil, threads: threads)
        if o.method == .qft {
            let state = QFT.stateBytes(
                layout, settings: o.qft, fusedGradientFloats: fusedGradientPeak(layout, tied: c.tiedEmbeddings))
            return plan.merging(state, uniquingKeysWith: +)
        }
        plan.merge(weights, uniquingKeysWith: +)
        plan[.gradients] = 4 * (o.isFused ? fusedGradientPeak(layout, tied: c.tiedEmbeddings) : params)
        if o.method == .lspOffload {  // its gradients are compressed, its optimizer state lives on the host
            plan[.gradients] = nil
            return plan.merging(
                LSPOffload.memory(layout, settings: o.lsp, groups: o.groups, tokens: o.batchSize * o.maxLength),
                uniquingKeysWith: +)
        }
        switch o.method {
        case .galore, .adarankgrad:  // at the largest rank: AdaRankGrad's ranks only fall from there
            plan[.optimizerState] = LowRankAdam.stateBytes(layout, rank: o.lowRank.maxRank, groups: o.groups)
            plan[.workspace, default: 0] += LowRankAdam.workspaceBytes(layout, settings: o.lowRank)
        default:
            plan[.optimizerState] =
                4 * TrainableLayout(layout, groups: o.groups).totalCount
                * (o.method == .adamw || o.method == .adamwFused ? 2 : 1)
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
