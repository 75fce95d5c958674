/// A metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case int(Int64), uint(UInt64), float(Double), bool(Bool), string(String)
    case array([GGUFValue])

    public var int: Int? {
        switch self {
        case .int(let v): Int(v)
        case .uint(let v): Int(exactly: v)
        default: nil
        }
    }
    public var double: Double? {
        switch self {
        case .float(let v): v
        case .int, .uint: int.map(Double.init)
        default: nil
        }
    }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var array: [GGUFValue]? { if case .array(let a) = self { a } else { nil } }
}

/// One tensor of a GGUF file: its shape (ggml order: dims[0] is the contiguous one), type and bytes.
public struct GGUFTensor: Sendable {
    public let name: String
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the file.
    public let offset: Int
    public var count: Int { dims.reduce(1, *) }
    public var byteCount: Int { type.byteCount(count) }
}

/// A GGUF (version 2 or 3) file, memory-mapped: metadata, tensor table, and tensor data read in place.
public final class GGUFFile {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    public let tensors: [String: GGUFTensor]
    private let file: MappedFile

    public init(path: String) throws {
        var r = try BinaryReader(path: path)
        self.path = path
        let magic = try r.read(UInt32.self, "the magic number")
        guard magic == 0x4655_4747 else {  // "GGUF"
            throw FormatError(
                file: path, problem: "not a GGUF file (magic \(String(magic, radix: 16)))",
                fix: "Pass a .gguf file, a Hugging Face directory or a llama2.c .bin with --tokenizer.")
        }
        version = try r.read(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            throw FormatError(
                file: path, problem: "GGUF version \(version)",
                fix: "Versions 2 and 3 are supported; convert the file with a current llama.cpp.")
        }
        let tensorCount64 = try r.read(UInt64.self, "the tensor count"),
            kvCount64 = try r.read(UInt64.self, "the metadata count")
        guard tensorCount64 < 1 << 20, kvCount64 < 1 << 20 else {
            throw FormatError(
                file: path,
                problem:
                    """
                    implausible counts at byte 8: \(tensorCount64) tensors, \(kvCount64) metadata entries (at most 2²⁰ \
                    each)
                    """,
                fix: "The header is corrupted.")
        }
        let tensorCount = Int(tensorCount64), kvCount = Int(kvCount64)
        var metadata: [String: GGUFValue] = [:]
        for i in 0..<kvCount {
            let key = try Self.string(&r, "the key of metadata entry \(i)")
            let type = try r.read(UInt32.self, "the type of '\(key)'")
            metadata[key] = try Self.value(&r, type: type, key: key)
        }
        var infos: [(name: String, dims: [Int], type: UInt32, offset: UInt64)] = []
        for i in 0..<tensorCount {
            let name = try Self.string(&r, "the name of tensor \(i)")
            let nDims = Int(try r.read(UInt32.self, "the rank of '\(name)'"))
            guard (1...4).contains(nDims) else {
                throw FormatError(
                    file: path, problem: "tensor '\(name)' has rank \(nDims)", fix: "The header is corrupted.")
            }
            var dims: [Int] = []
            for d in 0..<nDims {
                let v = try r.read(UInt64.self, "dimension \(d) of '\(name)'")
                guard v > 0, v < 1 << 32 else {
                    throw FormatError(
                        file: path, problem: "tensor '\(name)' has dimension \(v)", fix: "The header is corrupted.")
                }
                dims.append(Int(v))
            }
            guard elementCount(dims) != nil else {
                throw FormatError(
                    file: path, problem: "tensor '\(name)' has dimensions \(dims), more than 2⁴⁰ values",
                    fix: "The header is corrupted.")
            }
            infos.append(
                (
                    name, dims, try r.read(UInt32.self, "the type of '\(name)'"),
                    try r.read(UInt64.self, "the offset of '\(name)'")
                ))
        }
        let alignment = metadata["general.alignment"]?.int ?? 32
        guard alignment > 0, alignment <= 1 << 20, alignment.nonzeroBitCount == 1 else {
            throw FormatError(
                file: path, problem: "general.alignment is \(alignment)", fix: "It must be a power of two.")
        }
        let dataStart = (r.position + alignment - 1) / alignment * alignment
        var tensors: [String: GGUFTensor] = [:]
        for info in infos {
            guard let type = GGMLType(rawValue: info.type) else {
                throw FormatError(
                    file: path,
                    problem: "tensor '\(info.name)' has ggml type \(info.type), which LeanTune does not read",
                    fix:
                        """
                        Supported: \(GGMLType.allCases.map(\.name).joined(separator: ", ")); re-quantize the file to \
                        one of them.
                        """
                )
            }
            let count = info.dims.reduce(1, *)  // at most 2⁴⁰ (checked above)
            guard count % type.blockSize == 0, info.dims[0] % type.blockSize == 0 else {
                throw FormatError(
                    file: path,
                    problem: "tensor '\(info.name)' (\(info.dims)) is not a whole number of \(type.name) blocks",
                    fix: "The file is corrupted.")
            }
            guard info.offset < UInt64(r.count), dataStart + Int(info.offset) + type.byteCount(count) <= r.count else {
                throw FormatError(
                    file: path,
                    problem:
                        """
                        tensor '\(info.name)' (\(type.byteCount(count)) bytes at data offset \(info.offset)) lies past \
                        the end of the file (\(r.count) bytes)
                        """,
                    fix: "The file is truncated; download it again.")
            }
            let tensor = GGUFTensor(name: info.name, dims: info.dims, type: type, offset: dataStart + Int(info.offset))
            tensors[info.name] = tensor
        }
        let sorted = tensors.values.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw FormatError(
                file: path, problem: "tensors '\(a.name)' and '\(b.name)' overlap", fix: "The file is corrupted.")
        }
        self.metadata = metadata
        self.tensors = tensors
        file = r.file
    }

    /// Dequantizes tensor `name` into `out` (which must hold `tensor.count` floats).
    public func read(_ tensor: GGUFTensor, into out: UnsafeMutablePointer<Float>) {
        tensor.type.dequantize(file.bytes.baseAddress! + tensor.offset, out, count: tensor.count)
    }

    private static func string(_ r: inout BinaryReader, _ what: @autoclosure () -> String) throws -> String {
        let n = try r.read(UInt64.self, what())
        guard n <= UInt64(r.remaining) else { try r.need(Int(clamping: n), what()); return "" }
        return String(decoding: try r.bytes(Int(n), what()), as: UTF8.self)
    }

    /// A metadata value of `type`; arrays may hold arrays `depth` levels deep at most (GGUF writers use one).
    private static func value(_ r: inout BinaryReader, type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case 0: return .uint(UInt64(try r.read(UInt8.self, what)))
        case 1: return .int(Int64(try r.read(Int8.self, what)))
        case 2: return .uint(UInt64(try r.read(UInt16.self, what)))
        case 3: return .int(Int64(try r.read(Int16.self, what)))
        case 4: return .uint(UInt64(try r.read(UInt32.self, what)))
        case 5: return .int(Int64(try r.read(Int32.self, what)))
        case 6: return .float(Double(Float(bitPattern: try r.read(UInt32.self, what))))
        case 7: return .bool(try r.read(UInt8.self, what) != 0)
        case 8: return .string(try string(&r, what))
        case 9:
            let elementType = try r.read(UInt32.self, "the element type of '\(key)'")
            guard elementType != 9 || depth < 2 else {
                throw FormatError(
                    file: r.path, problem: "metadata '\(key)' nests arrays more than 2 deep (at byte \(r.position))",
                    fix: "The file is corrupted.")
            }
            let n = try r.read(UInt64.self, "the length of '\(key)'")
            guard n <= UInt64(r.remaining) else { try r.need(Int(clamping: n), what); return .array([]) }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(n))
            for _ in 0..<n { items.append(try value(&r, type: elementType, key: key, depth: depth + 1)) }
            return .array(items)
        case 10: return .uint(try r.read(UInt64.self, what))
        case 11: return .int(try r.read(Int64.self, what))
        case 12: return .float(Double(bitPattern: try r.read(UInt64.self, what)))
        default:
            throw FormatError(
                file: r.path, problem: "metadata '\(key)' has unknown value type \(type)",
                fix: "The file is corrupted or newer than GGUF v3.")
        }
    }
}
