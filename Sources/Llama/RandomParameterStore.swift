import TensorCore

/// Random weights that exist only while they are read: every matrix N(0, std²) from `rng` (stream = parameter
/// id, the values ``ParameterStore/initializeRandomly(_:std:)`` writes), every norm ones, generated into one
/// workspace tensor by tensor. A source to convert into the store a run trains in, so that a 7B model is made in
/// bf16 or INT8 without an fp32 copy of the whole model. Read-only.
public final class RandomParameterStore: ParameterStore {
    public let layout: ParameterLayout
    public let rng: Philox
    public let std: Float
    private let ledger: MemoryLedger
    private var workspace: AlignedBuffer<Float>?

    public init(layout: ParameterLayout, seed: UInt64, std: Float = 0.02, ledger: MemoryLedger = .shared) {
        self.layout = layout
        rng = Philox(seed: seed, domain: .initialization)
        self.std = std
        self.ledger = ledger
    }

    public func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        let info = layout.parameters[id]
        if workspace.map({ $0.count < info.count }) ?? true {
            workspace = nil
            workspace = AlignedBuffer(count: info.count, category: .workspace, ledger: ledger)
        }
        let w = workspace!.slice(0, info.count)
        if let constant = info.constantInitialValue {
            w.update(repeating: constant)
        } else {
            rng.fillNormal(w, stream: UInt64(id), scale: std)
        }
        return try body(UnsafeBufferPointer(w))
    }

    /// Not supported: the weights are a function of the seed (convert into a real store to train).
    public func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        preconditionFailure("RandomParameterStore is read-only: convert it into the store the run trains in")
    }
}
