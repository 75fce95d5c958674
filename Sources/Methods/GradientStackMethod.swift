import Llama
import TensorCore

/// QFT's gradient flow (its Algorithm 1 and 2): during backward each finished gradient is quantized to
/// block-wise INT8 and pushed onto a stack (tensors kept in fp32 push fp32); after backward the stack is
/// popped in LIFO order, which is forward order, and each tensor is updated. Unlike fused updates the
/// whole gradient is known before any weight moves, so the global norm is exact (measured on the fp32
/// gradients before quantization), clipping is possible and a non-finite step is skipped, at 1 byte per
/// parameter more than fused updates.
public final class GradientStackMethod: FineTuningMethod {
    public let optimizer: any Optimizer
    public let store: any ParameterStore
    public let clipNorm: Double?
    public let checkpointing: Bool
    private let stack: GradientStack

    /// - Parameter quantized: which parameters' gradients are pushed as INT8 (blocks of `blockSize`).
    public init(
        optimizer: any Optimizer, store: any ParameterStore, quantized: @escaping (ParameterID) -> Bool, blockSize: Int,
        clipNorm: Double?, checkpointing: Bool, ledger: MemoryLedger
    ) {
        self.optimizer = optimizer
        self.store = store
        self.clipNorm = clipNorm
        self.checkpointing = checkpointing
        stack = GradientStack(
            layout: optimizer.layout,
            skip: { [groups = optimizer.groups, layout = optimizer.layout] in
                groups.isFrozen(layout.parameters[$0].role)
            },
            quantized: quantized, blockSize: blockSize, ledger: ledger)
    }

    public var state: [StateTensor] { optimizer.state }

    public func step(
        _ model: LlamaModel, inputs: StepInputs, learningRate: Float, step: Int,
        nonFinite: inout NonFiniteGuard
    ) throws -> MethodStep {
        precondition(inputs.batches.count == 1, "the gradient stack takes one batch per step")
        defer { stack.clear() }
        let loss = try model.lossAndGradients(inputs.batches[0], into: stack, checkpointing: checkpointing)
        let norm = stack.sumOfSquares.squareRoot()
        guard try nonFinite.admit(loss: loss.mean, gradientNorm: norm, step: step) else {
            return MethodStep(loss: loss, gradientNorm: norm, skipped: true)
        }
        let scale = clipNorm.map { Float(min(1, $0 / (norm + 1e-6))) } ?? 1
        while let (id, gradient) = stack.pop(scale: scale) {
            optimizer.apply(id, to: store, gradient: gradient.pointer, learningRate: learningRate, step: step)
        }
        return MethodStep(loss: loss, gradientNorm: norm)
    }
}

/// The sink behind ``GradientStackMethod``: fp32 accumulators while a tensor's gradient builds up, then
/// a pushed entry (INT8 blocks, or fp32 for tensors kept in fp32).
final class GradientStack: GradientSink {
    private enum Entry {
        case fp32(ParameterID, AlignedBuffer<Float>)
        case int8(ParameterID, q: AlignedBuffer<Int8>, scales: AlignedBuffer<Float>)
    }

    let layout: ParameterLayout
    let skip: (ParameterID) -> Bool
    let quantized: (ParameterID) -> Bool
    let blockSize: Int
    private let ledger: MemoryLedger
    private let accumulators: TensorAccumulators
    private var entries: [Entry] = []
    /// Σ g² over the pushed gradients (fp32 values, before quantization).
    private(set) var sumOfSquares = 0.0

    init(
        layout: ParameterLayout, skip: @escaping (ParameterID) -> Bool, quantized: @escaping (ParameterID) -> Bool,
        blockSize: Int, ledger: MemoryLedger
    ) {
        (self.layout, self.skip, self.quantized, self.blockSize, self.ledger) = (
            layout, skip, quantized, blockSize, ledger
        )
        accumulators = TensorAccumulators(layout: layout, ledger: ledger)
    }

    func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> { accumulators.pointer(for: id) }

    func finish(_ id: ParameterID) {
        guard let g = accumulators.take(id), !skip(id) else { return }
        for lo in stride(from: 0, to: g.count, by: 1 << 16) {  // fp32 partial sums over short runs, added in Double
            sumOfSquares += Double(Vector.sumOfSquares(g.pointer + lo, min(1 << 16, g.count - lo)))
        }
        guard quantized(id) else { return entries.append(.fp32(id, g)) }
        let q = AlignedBuffer<Int8>(count: g.count, category: .gradients, ledger: ledger)
        let scales = AlignedBuffer<Float>(
            count: Int8Blocks.blockCount(g.count, blockSize: blockSize), category: .gradients, ledger: ledger)
        Int8Blocks.quantize(
            g.pointer, count: g.count, blockSize: blockSize, into: q.pointer, scales: scales.pointer, rounding: .nearest
        )
        entries.append(.int8(id, q: q, scales: scales))
    }

    /// The last pushed gradient, decoded to fp32 and multiplied by `scale`; nil when empty.
    func pop(scale: Float) -> (ParameterID, AlignedBuffer<Float>)? {
        guard let entry = entries.popLast() else { return nil }
        switch entry {
        case .fp32(let id, let g):
            if scale != 1 { Vector.scale(g.pointer, count: g.count, by: scale) }
            return (id, g)
        case .int8(let id, let q, let scales):
            let g = AlignedBuffer<Float>(count: q.count, category: .gradients, ledger: ledger)
            Int8Blocks.dequantize(
                q.pointer, scales: scales.pointer, count: q.count, blockSize: blockSize, into: g.pointer)
            if scale != 1 { Vector.scale(g.pointer, count: g.count, by: scale) }
            return (id, g)
        }
    }

    func clear() {
        accumulators.removeAll()
        entries.removeAll()
        sumOfSquares = 0
    }
}
