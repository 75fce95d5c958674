/// An element type a ``StateTensor`` can hold, with its ``DType``.
public protocol StorableElement: BitwiseCopyable {
    static var dtype: DType { get }
}

extension Float: StorableElement { public static var dtype: DType { .f32 } }
extension Int8: StorableElement { public static var dtype: DType { .i8 } }
extension Int32: StorableElement { public static var dtype: DType { .i32 } }
/// bf16 bits (the only 16-bit state LeanTune keeps).
extension UInt16: StorableElement { public static var dtype: DType { .bf16 } }

/// One named tensor of a method's or a parameter store's state, as a checkpoint saves and restores it:
/// raw bytes of a known element type, in a buffer this value keeps alive.
public struct StateTensor {
    public let name: String
    public let dtype: DType
    public let count: Int
    public let pointer: UnsafeMutableRawPointer
    private let owner: AnyObject

    public init<E: StorableElement>(_ name: String, _ buffer: AlignedBuffer<E>) {
        self.name = name
        dtype = E.dtype
        count = buffer.count
        pointer = UnsafeMutableRawPointer(buffer.pointer)
        owner = buffer
    }

    public var byteCount: Int { count * dtype.byteSize }

    /// The bytes, for tests that compare states.
    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: pointer, count: byteCount)) }
}
