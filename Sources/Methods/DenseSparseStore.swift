import Llama
import TensorCore

/// QFT's weight store: every matrix as a ``DenseSparseTensor`` (INT8 blocks plus fp32 outliers), the
/// groups in ``Settings/fp32Groups`` (always the norms) as plain fp32. There is no fp32 master copy:
/// reading a matrix decodes it into one shared workspace the size of the largest matrix, and writing
/// (``update(_:_:)``) re-encodes it with stochastic rounding, so that updates smaller than an INT8 step
/// still land in expectation.
public final class DenseSparseStore: ParameterStore {
    /// How the weights are quantized.
    public struct Settings: Sendable, Codable, Equatable {
        /// Fraction of each matrix's entries kept in fp32 as outliers (QFT: 1%).
        public var outlierFraction = 0.01
        /// Values per INT8 scale; 0 for one scale per output row. Per row by measurement (`leantune bench quantization`
        /// on SmolLM2-135M with 1% outliers): relative error 0.61% against 0.58% for blocks of 256 and 0.51% for 64, at
        /// the fewest bytes (1.092 per value against 1.102 and 1.149) and the fastest stochastic encode.
        public var blockSize = 0
        /// Groups kept in fp32 (weights and optimizer state); the norms always are.
        public var fp32Groups: Set<ParameterGroup> = [.norms]

        public init() {}

        /// Settings out of range, found before any weight is converted.
        public func validate() throws {
            guard outlierFraction >= 0, outlierFraction < 0.5 else {
                throw MethodError(
                    setting: "outlierFraction", message: "must be in [0, 0.5) (QFT keeps 0.01), got \(outlierFraction)")
            }
            guard blockSize >= 0, blockSize <= 1 << 20 else {
                throw MethodError(
                    setting: "blockSize",
                    message: "must be 0 (one scale per row) or a block size in 1...\(1 << 20), got \(blockSize)")
            }
        }

        func isQuantized(_ info: ParameterInfo) -> Bool {
            info.role.kind == .matrix && !fp32Groups.contains(ParameterGroup(info.role))
        }
        func block(_ info: ParameterInfo) -> Int { blockSize == 0 ? info.shape[1] : blockSize }
        func outliers(_ info: ParameterInfo) -> Int { Int(Double(info.count) * outlierFraction) }
    }

    private enum Tensor {
        case fp32(AlignedBuffer<Float>)
        case quantized(DenseSparseTensor)
    }

    public let layout: ParameterLayout
    public let settings: Settings
    private let tensors: [Tensor]
    /// The decoded matrix being read or written (one at a time).
    private let workspace: AlignedBuffer<Float>
    private var workspaceInUse = false
    /// Updates so far per parameter (stochastic rounding draws fresh bits for each); checkpointed.
    private let updates: AlignedBuffer<Int32>
    /// Outlier reselections so far; checkpointed.
    private let refreshes: AlignedBuffer<Int32>
    private let rng: Philox

    /// Converts `source` tensor by tensor (nearest rounding, outliers chosen from the source values).
    public init(
        converting source: any ParameterStore, settings: Settings, seed: UInt64, ledger: MemoryLedger = .shared
    ) throws {
        try settings.validate()
        layout = source.layout
        self.settings = settings
        rng = Philox(seed: seed, domain: .qftWeights)
        updates = AlignedBuffer(count: layout.parameters.count, category: .weights, ledger: ledger)
        refreshes = AlignedBuffer(count: 1, category: .weights, ledger: ledger)
        let quantized = layout.parameters.filter(settings.isQuantized)
        workspace = AlignedBuffer(count: quantized.map(\.count).max() ?? 0, category: .workspace, ledger: ledger)
        let workspace = workspace
        tensors = layout.parameters.enumerated().map { id, info in
            guard settings.isQuantized(info) else {
                let b = AlignedBuffer<Float>(count: info.count, category: .weights, ledger: ledger)
                source.withFloats(id) { b.pointer.update(from: $0.baseAddress!, count: info.count) }
                return .fp32(b)
            }
            let t = DenseSparseTensor(
                rows: info.shape[0], columns: info.shape[1], blockSize: settings.block(info),
                outlierCount: settings.outliers(info), ledger: ledger)
            source.withFloats(id) { workspace.pointer.update(from: $0.baseAddress!, count: info.count) }
            t.reselect(workspace.pointer, rounding: .nearest)
            return .quantized(t)
        }
    }

    /// Bytes the store holds for `layout` under `settings`, by ledger category.
    public static func bytes(_ layout: ParameterLayout, settings: Settings) -> [MemoryCategory: Int] {
        let weights = layout.parameters.reduce(4 * layout.parameters.count + 4) {
            $0 + bytes(of: $1, settings: settings)
        }
        return [
            .weights: weights, .workspace: 4 * (layout.parameters.filter(settings.isQuantized).map(\.count).max() ?? 0),
        ]
    }

    /// Bytes of one parameter as stored: INT8 values, scales and outliers, or fp32.
    public static func bytes(of info: ParameterInfo, settings: Settings) -> Int {
        guard settings.isQuantized(info) else { return 4 * info.count }
        return DenseSparseTensor.bytes(
            rows: info.shape[0], columns: info.shape[1], blockSize: settings.block(info),
            outlierCount: settings.outliers(info))
    }

    /// Whether parameter `id` is stored as INT8 (otherwise fp32).
    public func isQuantized(_ id: ParameterID) -> Bool {
        if case .quantized = tensors[id] { true } else { false }
    }

    public func withFloats<R>(_ id: ParameterID, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch tensors[id] {
        case .fp32(let b): return try body(UnsafeBufferPointer(b.buffer))
        case .quantized(let t):
            return try withWorkspace(t) { x in
                t.decode(into: x.baseAddress!)
                return try body(UnsafeBufferPointer(x))
            }
        }
    }

    public func update<R>(_ id: ParameterID, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        switch tensors[id] {
        case .fp32(let b): return try body(b.buffer)
        case .quantized(let t):
            return try withWorkspace(t) { x in
                t.decode(into: x.baseAddress!)
                let r = try body(x)
                let n = updates.pointer[id]
                updates.pointer[id] = n &+ 1
                t.encode(
                    x.baseAddress!,
                    rounding: .stochastic(rng, stream: UInt64(UInt32(bitPattern: n)) << 24 | UInt64(id) << 1, offset: 0)
                )
                return r
            }
        }
    }

    /// Chooses every matrix's outliers anew from its current values (QFT's lazy threshold refresh); the
    /// dense parts are re-encoded with stochastic rounding, so the refresh adds no bias.
    public func refreshOutliers() {
        let n = refreshes.pointer[0]
        refreshes.pointer[0] = n &+ 1
        for (id, tensor) in tensors.enumerated() {
            guard case .quantized(let t) = tensor else { continue }
            withWorkspace(t) { x in
                t.decode(into: x.baseAddress!)
                t.reselect(
                    x.baseAddress!,
                    rounding: .stochastic(
                        rng, stream: UInt64(UInt32(bitPattern: n)) << 24 | UInt64(id) << 1 | 1, offset: 0))
            }
        }
    }

    public var nativeState: [StateTensor]? {
        [StateTensor("qft.updates", updates), StateTensor("qft.refreshes", refreshes)]
            + zip(layout.parameters, tensors).flatMap { info, t in
                switch t {
                case .fp32(let b): [StateTensor(info.name, b)]
                case .quantized(let q): q.state(info.name)
                }
            }
    }

    /// After a checkpoint was read into ``nativeState``: every outlier layout is in bounds.
    public func checkNativeState() throws {
        for (info, t) in zip(layout.parameters, tensors) {
            if case .quantized(let q) = t, !q.checkLayout() {
                throw MethodError(
                    message:
                        """
                        the checkpoint's outlier layout of \(info.name) is not a valid CSR of \(info.shape); the file \
                        is corrupted
                        """
                )
            }
        }
    }

    private func withWorkspace<R>(
        _ t: DenseSparseTensor, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        precondition(!workspaceInUse, "DenseSparseStore: a matrix is read while another one is open")
        workspaceInUse = true
        defer { workspaceInUse = false }
        return try body(workspace.slice(0, t.count))
    }
}
