import TensorCore

/// Picks the next token from logits: greedy at temperature 0, otherwise softmax(logits / T),
/// optionally restricted to the smallest set whose probability reaches `topP` (nucleus sampling).
public struct Sampler: Sendable {
    public var temperature: Float
    public var topP: Float
    /// Random draws come from (seed, stream 0, step).
    public var rng: Philox
    private var step: UInt64 = 0

    public init(temperature: Float, topP: Float = 1, seed: UInt64) {
        self.temperature = temperature
        self.topP = topP
        rng = Philox(seed: seed)
    }

    /// The next token id.
    public mutating func sample(_ logits: [Float]) -> Int32 {
        guard temperature > 0 else { return Int32(Self.argmax(logits)) }
        let u = rng.uniform(stream: 0, index: step)
        step += 1
        let m = logits.max() ?? 0
        var probs = logits.map { FastMath.exp(($0 - m) / temperature) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var order = Array(probs.indices)
        if topP < 1 {
            order.sort { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            var mass: Float = 0, keep = 0
            while keep < order.count {
                mass += probs[order[keep]]
                keep += 1
                if mass >= topP { break }
            }
            order.removeSubrange(keep...)
        }
        let kept = order.reduce(Float(0)) { $0 + probs[$1] }
        var cumulative: Float = 0
        for i in order {
            cumulative += probs[i]
            if u * kept < cumulative { return Int32(i) }
        }
        return Int32(order.last ?? 0)
    }

    /// Index of the first maximum.
    public static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }
}
