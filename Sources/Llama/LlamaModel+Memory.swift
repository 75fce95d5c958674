import TensorCore

extension LlamaModel {
    /// Bytes per category that a pass over B×T tokens allocates besides the weights, from shapes alone
    /// (the same size functions the pass's buffers are made with): activations and workspace, including
    /// the attention tasks' score scratch.
    /// - Parameter training: nil for the forward-only loss, otherwise whether checkpointing is on.
    public static func passMemory(_ c: LlamaConfig, batch: Int, length: Int, training checkpointing: Bool?,
                                  logitsChunkBytes: Int = 64 << 20, threads: Int = Parallel.threadCount) -> [MemoryCategory: Int] {
        let s = PassShape(batch: batch, length: length)
        let kind: PassBuffers.Kind = checkpointing.map { .training(checkpointing: $0) } ?? .forwardOnly
        let plan = PassBuffers.plan(kind, c), logitsRows = max(1, logitsChunkBytes / (4 * c.vocabSize))
        func bytes(_ counts: [Int]) -> Int { 4 * counts.reduce(0) { $0 + Arena.padded($1) } }
        let attentionScratch = min(threads, batch * c.kvHeadCount) * (plan.backward ? 2 : 1) * min(Attention.queryBlock, length) * length
        return [
            .activations: 4 * plan.residuals * s.rows * c.dim + bytes(PassBuffers.activationCounts(kind, c, s)),
            .workspace: bytes(Workspace.counts(c, s, logitsRows: logitsRows, backward: plan.backward)) + 4 * attentionScratch,
        ]
    }
}
