/// An owning, 64-byte-aligned, zero-initialised array of `count` elements, registered in a
/// ``MemoryLedger`` for as long as it lives.
///
/// `@unchecked Sendable`: the buffer itself never changes after init; kernels that write through
/// ``pointer`` from several threads split the range into disjoint parts.
public final class AlignedBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    public static var alignment: Int { 64 }

    public let count: Int
    public let category: MemoryCategory
    public let pointer: UnsafeMutablePointer<Element>
    private let ledger: MemoryLedger

    public init(count: Int, category: MemoryCategory, ledger: MemoryLedger = .shared) {
        precondition(count >= 0, "AlignedBuffer: negative count \(count)")
        self.count = count
        self.category = category
        self.ledger = ledger
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        ledger.allocate(byteCount, category, bf16: Self.holdsBF16)
    }

    /// 16-bit elements are bf16 bits: the only 16-bit format a ledger sees (fp16 exists only while exporting).
    static var holdsBF16: Bool { Element.self == UInt16.self }

    deinit {
        ledger.free(byteCount, category, bf16: Self.holdsBF16)
        UnsafeMutableRawPointer(pointer).deallocate()
    }

    public var byteCount: Int { count * MemoryLayout<Element>.stride }

    public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// A view of `count` elements starting at `offset`.
    public func slice(_ offset: Int, _ count: Int) -> UnsafeMutableBufferPointer<Element> {
        precondition(offset >= 0 && count >= 0 && offset + count <= self.count, "AlignedBuffer: slice out of range")
        return UnsafeMutableBufferPointer(start: pointer + offset, count: count)
    }

    public func zero() {
        UnsafeMutableRawPointer(pointer).initializeMemory(as: UInt8.self, repeating: 0, count: byteCount)
    }
}
