import Llama
import TensorCore

/// Batches tokenized examples into ``TokenBatch``es: targets are the next tokens, -1 where the next
/// token is not trained or is padding.
public enum Batcher {
    /// One batch of `examples`, one per sequence, padded to the longest (at most `maxLength` predicted
    /// positions). Throws when an example is longer than `maxLength` (say so before training starts).
    public static func batch(_ examples: [TokenizedExample], maxLength: Int, padding: Int32 = 0) throws -> TokenBatch {
        try batch(packed: examples.map { [$0] }, maxLength: maxLength, padding: padding)
    }

    /// One batch whose sequence i holds the examples of `rows[i]` one after another; when a row holds more
    /// than one, the batch carries segment starts so that no example attends to another and positions
    /// restart per example. Each example contributes its own next-token pairs, so a packed batch has the
    /// same loss terms as the examples batched alone.
    public static func batch(packed rows: [[TokenizedExample]], maxLength: Int, padding: Int32 = 0) throws -> TokenBatch
    {
        for (i, e) in rows.joined().enumerated() where e.ids.count - 1 > maxLength {
            throw DataError(
                file: "(batch)", line: nil,
                problem:
                    """
                    example \(i) has \(e.ids.count) tokens; the model allows \(maxLength + 1). Shorten it or raise the \
                    sequence length
                    """
            )
        }
        let lengths = rows.map { $0.reduce(0) { $0 + $1.ids.count - 1 } }
        let length = lengths.max() ?? 0
        guard length >= 1, rows.allSatisfy({ $0.allSatisfy { $0.ids.count >= 2 } }) else {
            throw DataError(file: "(batch)", line: nil, problem: "examples need at least two tokens")
        }
        guard length <= maxLength else {
            throw DataError(
                file: "(batch)", line: nil, problem: "a packed row has \(length) positions, more than \(maxLength)")
        }
        let isPacked = rows.contains { $0.count > 1 }
        var inputs: [Int32] = [], targets: [Int32] = [], starts: [Int32] = []
        for (row, used) in zip(rows, lengths) {
            for e in row {
                let n = e.ids.count - 1
                starts += Array(repeating: Int32(inputs.count % length), count: n)
                inputs += e.ids[0..<n]
                targets += (1...n).map { e.trained[$0] ? e.ids[$0] : -1 }
            }
            starts += Array(repeating: Int32(used), count: length - used)  // padding is a sample of its own
            inputs += Array(repeating: padding, count: length - used)
            targets += Array(repeating: -1, count: length - used)
        }
        return TokenBatch(
            batchSize: rows.count, length: length, inputs: inputs, targets: targets,
            segmentStarts: isPacked ? starts : nil)
    }

    /// Packs examples of the given lengths (tokens), in order, into rows of at most `maxLength` predicted
    /// positions: a row takes the next example while it fits. Returns the index ranges of each row.
    public static func packRows(_ tokenCounts: [Int], maxLength: Int) -> [Range<Int>] {
        var rows: [Range<Int>] = [], start = 0, used = 0
        for (i, count) in tokenCounts.enumerated() {
            if i > start, used + count - 1 > maxLength {
                rows.append(start..<i)
                (start, used) = (i, 0)
            }
            used += count - 1
        }
        if start < tokenCounts.count { rows.append(start..<tokenCounts.count) }
        return rows
    }

    /// A permutation of 0..<count that depends only on `seed`, the data `stream` and `epoch` (Fisher–Yates over
    /// Philox draws of ``RNGDomain/dataOrder``).
    public static func shuffled(_ count: Int, seed: UInt64, stream: Int = 0, epoch: Int) -> [Int] {
        var order = Array(0..<count)
        let rng = Philox(seed: seed, dataStream: stream)
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.bits(stream: UInt64(epoch), index: UInt64(i)) % UInt32(i + 1))
            order.swapAt(i, j)
        }
        return order
    }
}
