/// A matrix operand of a GEMM: fp32 values or bf16 bits, row-major.
public enum GEMMOperand {
    case f32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)
}

/// The bf16 kernel of a model and the scratch its bf16 GEMMs convert operands into: one buffer per
/// ``Slot``, grown to the largest operand seen and registered in the ledger as workspace.
///
/// Not thread-safe: one owner (a model) issues its GEMMs one at a time.
public final class BF16Workspace {
    /// What a scratch buffer holds.
    public enum Slot: Int, CaseIterable {
        /// A GEMM's fp32 A and B operands, rounded to bf16.
        case a, b
        /// A weight tensor rounded to bf16 by a store that does not hold bf16.
        case weights
    }

    public let kernel: BF16Kernel
    private let ledger: MemoryLedger
    private var bits: [AlignedBuffer<UInt16>?] = Array(repeating: nil, count: Slot.allCases.count)
    /// The emulated kernel's fp32 copies of both operands.
    private var floats: [AlignedBuffer<Float>?] = [nil, nil]

    public init(kernel: BF16Kernel, ledger: MemoryLedger = .shared) {
        self.kernel = kernel
        self.ledger = ledger
    }

    /// Slot `slot`'s buffer with room for `count` values.
    public func buffer(_ slot: Slot, count: Int) -> UnsafeMutablePointer<UInt16> {
        if let b = bits[slot.rawValue], b.count >= count { return b.pointer }
        bits[slot.rawValue] = nil  // free the smaller one first
        let b = AlignedBuffer<UInt16>(count: count, category: .workspace, ledger: ledger)
        bits[slot.rawValue] = b
        return b.pointer
    }

    /// `count` values rounded to nearest even into slot `slot` (valid until that slot is written again).
    public func rounded(_ x: UnsafePointer<Float>, count: Int, slot: Slot) -> UnsafePointer<UInt16> {
        let out = buffer(slot, count: count)
        Conversions.toBF16(x, out, count: count)
        return UnsafePointer(out)
    }

    /// `operand` as bf16 bits: as it is, or rounded into slot `slot` (a rows × columns matrix with row stride
    /// `stride`).
    func bits(of operand: GEMMOperand, slot: Slot, rows: Int, columns: Int, stride: Int) -> UnsafePointer<UInt16> {
        switch operand {
        case .bf16(let p): return p
        case .f32(let p):
            return rounded(p, count: storedCount(rows: rows, columns: columns, stride: stride), slot: slot)
        }
    }

    /// Scratch `index` (0 or 1) of the emulated kernel with room for `count` floats.
    func widened(_ index: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        if let b = floats[index], b.count >= count { return b.pointer }
        floats[index] = nil
        let b = AlignedBuffer<Float>(count: count, category: .workspace, ledger: ledger)
        floats[index] = b
        return b.pointer
    }

    /// Frees every scratch buffer (they grow again on the next GEMM).
    public func release() {
        bits = Array(repeating: nil, count: Slot.allCases.count)
        floats = [nil, nil]
    }
}
