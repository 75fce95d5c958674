/// A file LeanTune cannot use, with where the problem is and what would fix it.
public struct FormatError: Error, CustomStringConvertible, Equatable {
    /// The file (or directory) at fault.
    public let file: String
    /// What is wrong, naming the field, tensor or offset.
    public let problem: String
    /// What the user can do about it.
    public let fix: String

    public init(file: String, problem: String, fix: String) {
        self.file = file
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(file): \(problem). \(fix)" }
}

/// Bounds-checked little-endian reads from a memory-mapped file; every read names what it reads,
/// so a short or corrupted file gives an error that says where.
struct BinaryReader {
    let file: MappedFile
    var position = 0

    init(path: String) throws { file = try MappedFile(path: path) }

    var path: String { file.path }
    var count: Int { file.bytes.count }
    var remaining: Int { count - position }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        defer { position += MemoryLayout<T>.size }
        return T(littleEndian: file.bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    mutating func int32(_ what: @autoclosure () -> String) throws -> Int32 { try read(Int32.self, what()) }

    mutating func float32(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    /// `n` bytes at the current position.
    mutating func bytes(_ n: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(n, what())
        defer { position += n }
        return UnsafeRawBufferPointer(rebasing: file.bytes[position..<position + n])
    }

    /// Copies `count` little-endian floats into `out`.
    mutating func floats(into out: UnsafeMutablePointer<Float>, count: Int, _ what: @autoclosure () -> String) throws {
        let raw = try bytes(count * 4, what())
        UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress!, byteCount: count * 4)
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws { _ = try bytes(n, what()) }

    func need(_ n: Int, _ what: String) throws {
        if n < 0 || n > remaining {
            throw FormatError(
                file: path,
                problem:
                    "the file ends at byte \(count) while reading \(what) (needs \(n) bytes at offset \(position))",
                fix: "The file is truncated or not in this format; download or export it again.")
        }
    }
}
