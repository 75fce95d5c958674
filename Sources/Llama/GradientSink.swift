import TensorCore

/// Where backward sends gradients. Backward *adds* each parameter's gradient into the buffer the
/// sink hands out, and calls ``finish(_:)`` once that gradient is final for the pass (in reverse
/// layer order, the embedding last). A sink may keep a full gradient slab, update the weights at
/// once and drop the gradient (fused optimizers), or compress and ship it elsewhere.
///
/// Weights may be changed in ``finish(_:)``: backward never reads a parameter after finishing it.
public protocol GradientSink: AnyObject {
    /// The buffer to add parameter `id`'s gradient into; the same buffer until `finish(id)`.
    func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float>
    /// The gradient of `id` is complete for this backward pass.
    func finish(_ id: ParameterID)
    /// Offers the gradient of a projection y = x·Wᵀ as its factors, dW = dyᵀ·x (dy is rows×out, x is rows×in). A sink
    /// that takes them (e.g. to compress them straight to Pᵀ·dW·Q) returns true and backward never forms dW;
    /// otherwise backward adds dW into ``accumulator(for:)``.
    func absorbFactors(_ id: ParameterID, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int) -> Bool
    /// Whether the gradient of `id` is needed at all; when not, backward skips the matrix gradients (the head's,
    /// the embedding's, a projection's dW) and never asks for their accumulators.
    func wants(_ id: ParameterID) -> Bool
}

extension GradientSink {
    public func wants(_ id: ParameterID) -> Bool { true }
    public func absorbFactors(_ id: ParameterID, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int) -> Bool {
        false
    }
}

/// A full fp32 gradient slab laid out like the parameters. Accumulates across backward passes
/// until ``zero()`` (gradient accumulation, global clipping).
public final class GradientSlab: GradientSink {
    public let layout: ParameterLayout
    public let slab: AlignedBuffer<Float>

    public init(layout: ParameterLayout, ledger: MemoryLedger = .shared) {
        self.layout = layout
        slab = AlignedBuffer(count: layout.totalCount, category: .gradients, ledger: ledger)
    }

    public func view(_ id: ParameterID) -> UnsafeMutableBufferPointer<Float> { layout.view(id, in: slab) }

    public func accumulator(for id: ParameterID) -> UnsafeMutablePointer<Float> { view(id).baseAddress! }

    public func finish(_ id: ParameterID) {}

    public func zero() { slab.zero() }
}

/// fp32 gradient buffers of single tensors, each allocated when backward first asks for it and handed over when
/// the tensor is finished: the sinks that never keep a full-model gradient build on these.
public final class TensorAccumulators {
    public let layout: ParameterLayout
    private let ledger: MemoryLedger
    private var live: [ParameterID: AlignedBuffer<Float>] = [:]

    public init(layout: ParameterLayout, ledger: MemoryLedger) {
        self.layout = layout
        self.ledger = ledger
    }

    /// Parameter `id`'s buffer (zeroed when new); the same one until it is taken.
    public func pointer(for id: ParameterID) -> UnsafeMutablePointer<Float> {
        if let b = live[id] { return b.pointer }
        let b = AlignedBuffer<Float>(count: layout.parameters[id].count, category: .gradients, ledger: ledger)
        live[id] = b
        return b.pointer
    }

    /// Hands over parameter `id`'s buffer (nil if backward never asked for it).
    public func take(_ id: ParameterID) -> AlignedBuffer<Float>? { live.removeValue(forKey: id) }

    public func removeAll() { live.removeAll() }
}
