import Llama
import TensorCore

/// Lion with QFT's INT8 momentum: each quantized tensor's momentum is block-wise INT8 (``Int8Blocks``),
/// decoded a slice at a time inside the update and re-encoded with stochastic rounding (nearest rounding
/// would freeze it: with β₂ = 0.99 a step moves m by 1% of (g − m), often less than half an INT8 step).
/// Tensors the store keeps in fp32 keep an fp32 momentum.
public final class QuantizedLion: Optimizer {
    public let layout: ParameterLayout
    public var groups: ParameterGroups
    public let beta1: Float, beta2: Float
    /// Values per momentum scale.
    public let blockSize: Int

    private enum Moment {
        case fp32(AlignedBuffer<Float>)
        case int8(q: AlignedBuffer<Int8>, scales: AlignedBuffer<Float>)
    }

    private let moments: [Moment]
    private let rng: Philox

    /// - Parameter quantized: which parameters get an INT8 momentum.
    public init(
        layout: ParameterLayout, quantized: (ParameterID) -> Bool, blockSize: Int, beta1: Float = 0.9,
        beta2: Float = 0.99,
        groups: ParameterGroups, seed: UInt64, ledger: MemoryLedger = .shared
    ) {
        self.layout = layout
        self.groups = groups
        (self.beta1, self.beta2, self.blockSize) = (beta1, beta2, blockSize)
        rng = Philox(seed: seed, domain: .quantizedLion)
        moments = layout.parameters.indices.map { id in
            let n = layout.parameters[id].count
            guard quantized(id) else {
                return .fp32(AlignedBuffer(count: n, category: .optimizerState, ledger: ledger))
            }
            return .int8(
                q: AlignedBuffer(count: n, category: .optimizerState, ledger: ledger),
                scales: AlignedBuffer(
                    count: Int8Blocks.blockCount(n, blockSize: blockSize), category: .optimizerState, ledger: ledger))
        }
    }

    /// Optimizer-state bytes for `layout`: 1 per value plus 4 per block for quantized tensors, 4 per value otherwise.
    public static func bytes(_ layout: ParameterLayout, quantized: (ParameterID) -> Bool, blockSize: Int) -> Int {
        layout.parameters.indices.reduce(0) { total, id in
            let n = layout.parameters[id].count
            return total + (quantized(id) ? n + 4 * Int8Blocks.blockCount(n, blockSize: blockSize) : 4 * n)
        }
    }

    public var state: [StateTensor] {
        zip(layout.parameters, moments).flatMap { info, m in
            switch m {
            case .fp32(let b): [StateTensor("lion.m." + info.name, b)]
            case .int8(let q, let s):
                [StateTensor("lion.m." + info.name + ".q", q), StateTensor("lion.m." + info.name + ".scales", s)]
            }
        }
    }

    public func update(
        _ id: ParameterID, weights: UnsafeMutableBufferPointer<Float>, gradient: UnsafePointer<Float>,
        learningRate lr: Float, step: Int
    ) {
        let rule = Lion.Rule(beta1: beta1, beta2: beta2, learningRate: lr, keep: 1 - lr * weightDecay(id))
        nonisolated(unsafe) let (p, g) = (weights.baseAddress!, gradient)
        switch moments[id] {
        case .fp32(let m):
            nonisolated(unsafe) let m = m.pointer
            Parallel.forEachChunk(weights.count, grain: 1 << 15) { r in rule.apply(p, g, m, r) }
        case .int8(let q, let scales):
            // Tasks own disjoint block ranges and walk them in slices of ≤ 32 Ki values decoded on their stack.
            nonisolated(unsafe) let (q, scales) = (q.pointer, scales.pointer)
            let (count, bs) = (weights.count, blockSize), slice = max(1, (1 << 15) / bs)
            let stream = UInt64(step) << 24 | UInt64(id)
            Parallel.forEachChunk(Int8Blocks.blockCount(count, blockSize: bs), grain: slice) { blocks in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: slice * bs) { m in
                    let m = m.baseAddress!
                    for b in stride(from: blocks.lowerBound, to: blocks.upperBound, by: slice) {
                        let start = b * bs, n = min(min(blocks.upperBound, b + slice) * bs, count) - start
                        Int8Blocks.dequantize(q + start, scales: scales + b, count: n, blockSize: bs, into: m)
                        rule.apply(p + start, g + start, m, 0..<n)
                        Int8Blocks.quantize(
                            m, count: n, blockSize: bs, into: q + start, scales: scales + b,
                            rounding: .stochastic(rng, stream: stream, offset: UInt64(start)))
                    }
                }
            }
        }
    }
}
