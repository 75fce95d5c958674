/// B sequences of T tokens with their next-token targets. A negative target is ignored by the loss
/// (prompt masking, padding).
public struct TokenBatch: Sendable, Equatable {
    /// B
    public let batchSize: Int
    /// T
    public let length: Int
    /// [B, T] input ids.
    public let inputs: [Int32]
    /// [B, T] target ids; negative = not scored.
    public let targets: [Int32]
    /// Packed samples: [B, T] the position in its sequence where each token's sample starts; a token
    /// attends only within its sample and its RoPE position restarts there. nil: one sample per sequence.
    public let segmentStarts: [Int32]?

    public init(batchSize: Int, length: Int, inputs: [Int32], targets: [Int32], segmentStarts: [Int32]? = nil) {
        precondition(batchSize > 0 && length > 0, "TokenBatch: empty shape \(batchSize)×\(length)")
        precondition(
            inputs.count == batchSize * length && targets.count == inputs.count,
            "TokenBatch: \(inputs.count) inputs / \(targets.count) targets for \(batchSize)×\(length)")
        self.batchSize = batchSize
        self.length = length
        self.inputs = inputs
        self.targets = targets
        if let segmentStarts {
            precondition(
                segmentStarts.count == inputs.count,
                "TokenBatch: \(segmentStarts.count) segment starts for \(inputs.count) tokens")
            precondition(
                segmentStarts.indices.allSatisfy { i in
                    let t = i % length, start = Int(segmentStarts[i])
                    return start <= t && (t == 0 || start >= Int(segmentStarts[i - 1]))
                }, "TokenBatch: segment starts must be non-decreasing and ≤ each token's position")
        }
        self.segmentStarts = segmentStarts
    }

    /// Language-model batch from B sequences of T+1 tokens: inputs are the first T, targets the last T.
    public init(sequences: [[Int32]]) {
        let t = (sequences.first?.count ?? 1) - 1
        precondition(sequences.allSatisfy { $0.count == t + 1 }, "TokenBatch: sequences differ in length")
        self.init(
            batchSize: sequences.count, length: t,
            inputs: sequences.flatMap { $0.dropLast() }, targets: sequences.flatMap { $0.dropFirst() })
    }

    /// N = B·T
    public var rowCount: Int { batchSize * length }
    /// Targets that count in the loss.
    public var scoredCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
}

/// Sum and count of per-token negative log-likelihoods.
public struct LossResult: Sendable, Equatable {
    public var sum: Double
    public var count: Int

    public init(sum: Double, count: Int) {
        self.sum = sum
        self.count = count
    }
    /// Mean NLL per scored token (0 when nothing is scored).
    public var mean: Double { count > 0 ? sum / Double(count) : 0 }
}
