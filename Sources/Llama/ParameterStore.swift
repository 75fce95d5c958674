import TensorCore

/// Where a model's weights live. The model reads and writes weights only through a store, one
/// tensor at a time, so a store may keep them in any format (fp32, bf16, INT8 dense-and-sparse) and
/// hand out a dequantized fp32 view that lives only for the duration of the closure.
public protocol ParameterStore: AnyObject {
    var layout: ParameterLayout { get }

    /// Calls `body` with a read-only fp32 view of parameter `id` (row-major, `layout.parameters[id].count` values).
    func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R

    /// Calls `body` with a writable fp32 view of parameter `id`; what `body` leaves there is stored.
    func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R

    /// Calls `body` with parameter `id` as bf16 bits: the store's own when it holds bf16, otherwise rounded to
    /// nearest even into `workspace`'s weight slot (one tensor at a time, never the whole model).
    func withBF16<R>(
        _ id: ParameterID, workspace: BF16Workspace, _ body: (UnsafePointer<UInt16>) throws -> R
    ) rethrows -> R

    /// Parameter `id`'s bf16 bits when the store holds them as such (read-only), nil otherwise.
    func storedBF16(_ id: ParameterID) -> UnsafePointer<UInt16>?

    /// The store's own tensors when its weights are not plain fp32 (a checkpoint saves and restores these
    /// bit for bit instead of fp32 weights); nil when the fp32 views are the weights.
    var nativeState: [StateTensor]? { get }

    /// Checks what a checkpoint read into ``nativeState`` (e.g. that indices are in bounds).
    func checkNativeState() throws
}

extension ParameterStore {
    public var nativeState: [StateTensor]? { nil }
    public func checkNativeState() throws {}
    public func storedBF16(_ id: ParameterID) -> UnsafePointer<UInt16>? { nil }

    public func withBF16<R>(
        _ id: ParameterID, workspace: BF16Workspace, _ body: (UnsafePointer<UInt16>) throws -> R
    ) rethrows -> R {
        try withFloats(id) { w in
            let bits = workspace.buffer(.weights, count: w.count)
            Conversions.toBF16(w, UnsafeMutableBufferPointer(start: bits, count: w.count))
            return try body(bits)
        }
    }
}

/// All parameters as fp32 in one 64-byte-aligned slab; views are zero-copy.
public final class FP32ParameterStore: ParameterStore {
    public let layout: ParameterLayout
    /// The whole slab, for methods that update every parameter in one flat loop.
    public let slab: AlignedBuffer<Float>

    public init(layout: ParameterLayout, ledger: MemoryLedger = .shared) {
        self.layout = layout
        slab = AlignedBuffer(count: layout.totalCount, category: .weights, ledger: ledger)
    }

    /// A copy of every tensor of `source` as fp32, one tensor at a time.
    public convenience init(converting source: any ParameterStore, ledger: MemoryLedger = .shared) {
        self.init(layout: source.layout, ledger: ledger)
        for id in layout.parameters.indices {
            source.withFloats(id) { view(id).baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
        }
    }

    /// The fp32 view of one parameter.
    public func view(_ id: ParameterID) -> UnsafeMutableBufferPointer<Float> { layout.view(id, in: slab) }

    public func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(view(id)))
    }

    public func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(view(id))
    }
}

extension ParameterStore {
    /// Fills every matrix with N(0, std²) from `rng` (stream = parameter id), every scale with ones and every bias
    /// with zeros.
    public func initializeRandomly(_ rng: Philox, std: Float = 0.02) {
        for (id, info) in layout.parameters.enumerated() {
            update(id) { w in
                if let constant = info.constantInitialValue {
                    w.update(repeating: constant)
                } else {
                    rng.fillNormal(w, stream: UInt64(id), scale: std)
                }
            }
        }
    }
}
