import TensorCore

extension LlamaModel {
    /// Bytes per category that a pass over B×T tokens allocates besides the weights, from shapes alone
    /// (the same size functions the pass's buffers are made with): activations and workspace, including
    /// the attention tasks' score scratch.
    /// - Parameters:
    ///   - training: nil for the forward-only loss, otherwise whether checkpointing is on.
    ///   - bf16: computing in bf16: layers may keep activations in bf16 (``PassBuffers/keepsBF16(_:bf16:)``), and
    ///     attention rounds its operands (``Attention/bf16Bytes(_:backward:threads:)``).
    public static func passMemory(
        _ c: LlamaConfig, batch: Int, length: Int, training checkpointing: Bool?, bf16: Bool = false,
        logitsChunkBytes: Int = 64 << 20, threads: Int = Parallel.threadCount
    ) -> [MemoryCategory: Int] {
        let s = PassShape(batch: batch, length: length)
        let kind: PassBuffers.Kind = checkpointing.map { .training(checkpointing: $0) } ?? .forwardOnly
        let plan = PassBuffers.plan(kind, c), logitsRows = max(1, logitsChunkBytes / (4 * c.vocabSize))
        let bytes = Arena<Float>.bytes
        let shared = PassBuffers.keepsBF16(kind, bf16: bf16)
        let attentionShape = AttentionShape(
            batch: batch, queries: length, keys: length, heads: c.headCount, kvHeads: c.kvHeadCount,
            headDim: c.headDim, queryOffset: 0, softcap: c.gemma.attentionSoftcap)
        let attentionScratch =
            min(threads, batch * c.kvHeadCount) * attentionShape.scratchMatrices(backward: plan.backward)
            * min(Attention.queryBlock, length) * length
        let attentionBF16 = bf16 ? Attention.bf16Bytes(attentionShape, backward: plan.backward, threads: threads) : 0
        return [
            .activations: 4 * plan.residuals * s.rows * c.dim
                + bytes(PassBuffers.activationCounts(kind, c, s, bf16: bf16))
                + Arena<UInt16>.bytes(PassBuffers.keptCounts(kind, c, s, bf16: bf16)),
            .workspace: bytes(Workspace.counts(c, s, logitsRows: logitsRows, backward: plan.backward, shared: shared))
                + 4 * attentionScratch + attentionBF16,
        ]
    }

    /// Bytes of the bf16-compute scratch (``BF16Workspace``) a pass allocates: its activations rounded to bf16 as
    /// A operands (slot a: the widest activation, or a logits chunk's gradient in training), the fp32 B operands of
    /// the weight-gradient products (slot b, training only), and the largest matrix rounded to bf16 when the store
    /// does not hand out its own bf16 bits or a perturbation is formed as the weights are read.
    /// - Parameters:
    ///   - roundsWeights: the store is not bf16, or weights are perturbed as they are read.
    ///   - formsWeightGradients: backward multiplies out weight gradients (not when a sink absorbs every factor).
    public static func bf16ScratchBytes(
        _ c: LlamaConfig, batch: Int, length: Int, training: Bool, roundsWeights: Bool,
        formsWeightGradients: Bool = true, logitsChunkBytes: Int = 64 << 20
    ) -> Int {
        let n = batch * length, chunk = Workspace.chunkRows(n, logitsRows: max(1, logitsChunkBytes / (4 * c.vocabSize)))
        let widest = n * max(c.ffnDim, c.queryDim)
        let slotA = max(widest, training ? chunk * c.vocabSize : chunk * c.dim)
        let slotB = training && formsWeightGradients ? max(widest, chunk * c.dim) : 0
        let largest = ParameterLayout(c).parameters.filter { $0.shape.count == 2 }.map(\.count).max() ?? 0
        return 2 * (slotA + slotB + (roundsWeights ? largest : 0))
    }
}
