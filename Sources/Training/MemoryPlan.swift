import Llama
import TensorCore

/// Bytes per ledger category that a training run will use, predicted from shapes alone.
public enum MemoryPlan {
    public static func estimate(_ c: LlamaConfig, options o: TrainingOptions, threads: Int = Parallel.threadCount) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c), params = layout.totalCount
        var plan = LlamaModel.passMemory(c, batch: o.batchSize, length: o.maxLength, training: o.checkpointing, threads: threads)
        plan[.weights] = 4 * params
        plan[.gradients] = 4 * (o.method == .adamwFused ? fusedGradientPeak(layout, tied: c.tiedEmbeddings) : params)
        plan[.optimizerState] = 4 * params * (o.method == .adamw || o.method == .adamwFused ? 2 : 1)
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
