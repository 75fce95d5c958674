import TensorCore

/// All parameters as bf16 bits in one slab (2 bytes per parameter): what MeZO runs in half precision, and
/// the `bf16` weights option of the gradient methods.
///
/// ``withBF16(_:workspace:_:)`` is zero-copy. ``withFloats(_:_:)`` widens one tensor into an fp32 workspace the
/// size of the largest tensor; ``update(_:_:)`` widens, lets the caller change the fp32 values, and rounds them
/// back stochastically, so that updates smaller than half a bf16 step still land in expectation. The random
/// bits of update n of tensor `id` come from the store's seed at stream (n, id): a resumed run rounds exactly as
/// the uninterrupted one would, because the update counts are checkpointed with the weights.
public final class BF16ParameterStore: ParameterStore {
    public let layout: ParameterLayout
    public let slab: AlignedBuffer<UInt16>
    /// Updates so far per parameter; checkpointed.
    let updates: AlignedBuffer<Int32>
    private let workspace: AlignedBuffer<Float>
    private var workspaceInUse = false
    private let rng: Philox

    public init(layout: ParameterLayout, seed: UInt64, ledger: MemoryLedger = .shared) {
        self.layout = layout
        slab = AlignedBuffer(count: layout.totalCount, category: .weights, ledger: ledger)
        updates = AlignedBuffer(count: layout.parameters.count, category: .weights, ledger: ledger)
        workspace = AlignedBuffer(
            count: BF16ParameterStore.workspaceCount(layout), category: .workspace, ledger: ledger)
        rng = Philox(seed: seed, domain: .bf16Rounding)
    }

    /// Rounds every tensor of `source` to nearest even, one tensor at a time.
    public convenience init(converting source: any ParameterStore, seed: UInt64, ledger: MemoryLedger = .shared) {
        self.init(layout: source.layout, seed: seed, ledger: ledger)
        for id in layout.parameters.indices {
            source.withFloats(id) { Conversions.toBF16($0, bits(id)) }
        }
    }

    /// Floats of the fp32 workspace: the largest tensor.
    public static func workspaceCount(_ layout: ParameterLayout) -> Int { layout.parameters.map(\.count).max() ?? 0 }

    /// Bytes by ledger category for `layout`.
    public static func bytes(_ layout: ParameterLayout) -> [MemoryCategory: Int] {
        [.weights: 2 * layout.totalCount + 4 * layout.parameters.count, .workspace: 4 * workspaceCount(layout)]
    }

    /// The bf16 bits of parameter `id`.
    public func bits(_ id: ParameterID) -> UnsafeMutableBufferPointer<UInt16> {
        slab.slice(layout.parameters[id].offset, layout.parameters[id].count)
    }

    public func storedBF16(_ id: ParameterID) -> UnsafePointer<UInt16>? { UnsafePointer(bits(id).baseAddress!) }

    public func withBF16<R>(
        _ id: ParameterID, workspace: BF16Workspace, _ body: (UnsafePointer<UInt16>) throws -> R
    ) rethrows -> R {
        try body(UnsafePointer(bits(id).baseAddress!))
    }

    public func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try widened(id) { try body(UnsafeBufferPointer($0)) }
    }

    public func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try widened(id) { w in
            let r = try body(w)
            let n = updates.pointer[id]
            updates.pointer[id] = n &+ 1
            Conversions.toBF16(
                UnsafeBufferPointer(w), bits(id),
                rounding: .stochastic(rng, stream: UInt64(UInt32(bitPattern: n)) << 24 | UInt64(id), offset: 0))
            return r
        }
    }

    public var nativeState: [StateTensor]? {
        [StateTensor("bf16.updates", updates), StateTensor("bf16.weights", slab)]
    }

    private func widened<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(!workspaceInUse, "BF16ParameterStore: a tensor is read while another one is open")
        workspaceInUse = true
        defer { workspaceInUse = false }
        let w = workspace.slice(0, layout.parameters[id].count)
        Conversions.fromBF16(UnsafeBufferPointer(bits(id)), w)
        return try body(w)
    }
}
