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

/// The bytes of a file, memory-mapped, with bounds-checked little-endian reads.
struct BinaryReader {
    let path: String
    let bytes: [UInt8]
    var position = 0

    init(path: String) throws {
        self.path = path
        guard let data = FileBytes.read(path) else {
            throw FormatError(file: path, problem: "cannot open the file", fix: "Check that the path exists and is readable.")
        }
        bytes = data
    }

    var remaining: Int { bytes.count - position }

    mutating func int32(_ what: String) throws -> Int32 {
        try need(4, what)
        defer { position += 4 }
        return bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: position, as: Int32.self)) }
    }

    mutating func float32(_ what: String) throws -> Float {
        Float(bitPattern: UInt32(bitPattern: try int32(what)))
    }

    mutating func bytes(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        try need(n, what)
        defer { position += n }
        return bytes[position..<position + n]
    }

    /// Copies `count` little-endian floats into `out`.
    mutating func floats(into out: UnsafeMutablePointer<Float>, count: Int, _ what: String) throws {
        try need(count * 4, what)
        bytes.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(out).copyMemory(from: raw.baseAddress! + position, byteCount: count * 4)
        }
        position += count * 4
    }

    mutating func skip(_ n: Int, _ what: String) throws {
        try need(n, what)
        position += n
    }

    private func need(_ n: Int, _ what: String) throws {
        if n < 0 || n > remaining {
            throw FormatError(
                file: path, problem: "the file ends at byte \(bytes.count) while reading \(what) (needs \(n) bytes at offset \(position))",
                fix: "The file is truncated or not in this format; download or export it again.")
        }
    }
}

import Foundation

enum FileBytes {
    static func read(_ path: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return [UInt8](data)
    }
}
