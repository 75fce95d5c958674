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
                formsWeightGradients: o.method.definition.formsWeightGradients(o))
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
        o.method.definition.memory(c, options: o, threads: threads)
    }

    /// The activations and buffers of a training pass (forward and backward, checkpointed or not).
    public static func pass(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int] {
        LlamaModel.passMemory(
            c, batch: o.batchSize, length: o.maxLength, training: o.checkpointing,
            bf16: o.precision.kernel.kernel != nil, threads: threads)
    }

    /// A training pass with the weights and the gradients: the full slab, or with fused updates the most that is alive
    /// at once.
    public static func gradientPass(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int]
    {
        let layout = ParameterLayout(c)
        var plan = pass(c, options: o, threads: threads).merging(
            weightBytes(layout, o.weightFormat), uniquingKeysWith: +)
        plan[.gradients] = 4 * (o.isFused ? fusedGradientPeak(layout, tied: c.tiedEmbeddings) : layout.totalCount)
        return plan
    }

    /// The forward-only path of zeroth-order methods: the weights, one layer's buffers, and the fp32 copy of a
    /// perturbed tensor read as floats where the weights are not fp32.
    public static func forwardPass(_ c: LlamaConfig, options o: TrainingOptions, threads: Int) -> [MemoryCategory: Int]
    {
        let layout = ParameterLayout(c)
        var plan = LlamaModel.passMemory(
            c, batch: o.batchSize * o.objective.sequencesPerExample, length: o.maxLength, training: nil,
            bf16: o.precision.kernel.kernel != nil, threads: threads)
        plan.merge(weightBytes(layout, o.weightFormat), uniquingKeysWith: +)
        if o.weightFormat != .fp32 {
            let floats = o.precision.kernel.kernel != nil ? c.dim : BF16ParameterStore.workspaceCount(layout)
            plan[.workspace, default: 0] += 4 * floats
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
