import Foundation
import TensorCore

/// One tensor of a safetensors file.
public struct SafeTensor: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Offset of the data from the start of the file, and its length.
    public let offset: Int, byteCount: Int
    public var count: Int { shape.reduce(1, *) }

    /// Rows `range` of this 2-D tensor as a tensor of its own (a view of the same bytes): one parameter of a
    /// checkpoint tensor that stacks several (Phi-3's qkv_proj).
    public func rows(_ range: Range<Int>, name: String) -> SafeTensor {
        let rowBytes = byteCount / max(1, shape[0])
        return SafeTensor(
            name: name, dtype: dtype, shape: [range.count, shape[1]], offset: offset + range.lowerBound * rowBytes,
            byteCount: range.count * rowBytes)
    }
}

/// A safetensors file, memory-mapped: an 8-byte little-endian header length, a JSON header
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`), then the data.
/// The header is validated in full before any tensor is read.
public final class SafeTensorsFile {
    public let path: String
    public let tensors: [String: SafeTensor]
    public let metadata: [String: String]
    private let file: MappedFile

    public static let dtypes: [String: DType] = ["F32": .f32, "F16": .f16, "BF16": .bf16, "I8": .i8, "I32": .i32]

    /// The safetensors name of `dtype`.
    static func name(_ dtype: DType) -> String { dtypes.first { $0.value == dtype }!.key }

    public init(path: String) throws {
        var r = try BinaryReader(path: path)
        let headerLength = try r.read(UInt64.self, "the header length")
        guard headerLength <= UInt64(r.remaining), headerLength <= 100 << 20 else {
            throw FormatError(
                file: path, problem: "the header claims \(headerLength) bytes but \(r.remaining) follow",
                fix: "The file is truncated or not safetensors.")
        }
        let headerBytes = try r.bytes(Int(headerLength), "the JSON header")
        let dataStart = r.position, dataLength = r.count - dataStart
        guard let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
            throw FormatError(
                file: path, problem: "the header is not a JSON object", fix: "The file is corrupted or not safetensors."
            )
        }
        var tensors: [String: SafeTensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw FormatError(
                    file: path, problem: "tensor '\(name)' lacks dtype, shape or data_offsets",
                    fix: "The header is corrupted.")
            }
            guard let dtype = Self.dtypes[dtypeName] else {
                throw FormatError(
                    file: path, problem: "tensor '\(name)' has dtype \(dtypeName)",
                    fix: "Supported: \(Self.dtypes.keys.sorted().joined(separator: ", ")); convert the checkpoint.")
            }
            guard let count = elementCount(shape) else {
                throw FormatError(
                    file: path,
                    problem: "tensor '\(name)' has shape \(shape): a negative dimension or more than 2⁴⁰ values",
                    fix: "The header is corrupted.")
            }
            guard offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataLength else {
                throw FormatError(
                    file: path,
                    problem: "tensor '\(name)' has data_offsets \(offsets) outside the \(dataLength) data bytes",
                    fix: "The file is truncated or corrupted.")
            }
            let expected = count * dtype.byteSize
            guard offsets[1] - offsets[0] == expected else {
                throw FormatError(
                    file: path,
                    problem:
                        """
                        tensor '\(name)' (\(dtypeName) \(shape)) needs \(expected) bytes but data_offsets give \
                        \(offsets[1] - offsets[0])
                        """,
                    fix: "The header is corrupted.")
            }
            tensors[name] = SafeTensor(
                name: name, dtype: dtype, shape: shape, offset: dataStart + offsets[0], byteCount: expected)
        }
        let sorted = tensors.values.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw FormatError(
                file: path, problem: "tensors '\(a.name)' and '\(b.name)' overlap", fix: "The file is corrupted.")
        }
        self.path = path
        self.tensors = tensors
        self.metadata = metadata
        file = r.file
    }

    /// Converts `tensor` (a floating-point type) to fp32 into `out` (`tensor.count` floats).
    public func read(_ tensor: SafeTensor, into out: UnsafeMutablePointer<Float>) {
        let src = file.bytes.baseAddress! + tensor.offset
        switch tensor.dtype {
        case .i8, .i32: preconditionFailure("SafeTensorsFile.read: \(tensor.name) is \(tensor.dtype), not a float type")
        case .f32: UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: tensor.byteCount)
        case .bf16, .f16:
            let o = UnsafeMutableBufferPointer(start: out, count: tensor.count)
            func convert(_ b: UnsafeBufferPointer<UInt16>) {
                if tensor.dtype == .bf16 { Conversions.fromBF16(b, o) } else { Conversions.fromF16(b, o) }
            }
            if Int(bitPattern: src) % MemoryLayout<UInt16>.alignment == 0 {  // straight from the map, no copy
                convert(UnsafeBufferPointer(start: src.assumingMemoryBound(to: UInt16.self), count: tensor.count))
            } else {  // only a file that breaks the format's alignment: copy first
                var bits = [UInt16](repeating: 0, count: tensor.count)
                bits.withUnsafeMutableBytes {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: src, count: tensor.byteCount))
                }
                bits.withUnsafeBufferPointer(convert)
            }
        }
    }

    /// Drops the mapped pages of `tensor` from this process (they stay in the page cache), so that reading a
    /// checkpoint tensor by tensor does not keep the whole file resident.
    public func release(_ tensor: SafeTensor) { file.release(offset: tensor.offset, count: tensor.byteCount) }

    /// Copies `tensor`'s bytes as stored into `out` (`tensor.byteCount` bytes).
    public func readBytes(_ tensor: SafeTensor, into out: UnsafeMutableRawPointer) {
        out.copyMemory(from: file.bytes.baseAddress! + tensor.offset, byteCount: tensor.byteCount)
    }
}

/// Writes safetensors files one tensor at a time (only one tensor's values exist at once), atomically:
/// a temporary file renamed into place. Float tensors are written as the file's dtype (F32 or BF16);
/// state tensors keep their own type.
public enum SafeTensorsWriter {
    /// A tensor to write: its name, shape, and where its data comes from when it is written.
    public struct Entry {
        public let name: String
        public let shape: [Int]
        let source: Source

        enum Source {
            /// fp32 values, converted to the file's dtype.
            case floats(() -> [Float])
            /// Bytes of a state tensor, written as they are.
            case state(StateTensor)
        }

        public init(name: String, shape: [Int], values: @escaping () -> [Float]) {
            self.name = name
            self.shape = shape
            source = .floats(values)
        }

        /// A state tensor as a 1-D tensor of its own dtype.
        public init(_ tensor: StateTensor) {
            name = tensor.name
            shape = [tensor.count]
            source = .state(tensor)
        }

        func dtype(_ fileType: DType) -> DType {
            if case .state(let t) = source { t.dtype } else { fileType }
        }
    }

    /// Writes `entries` to `path`, float values as `dtype` (.f32, or .bf16 rounded to nearest even). Returns the data
    /// bytes.
    @discardableResult
    public static func write(
        _ entries: [Entry], to path: String, dtype: DType, metadata: [String: String] = [:]
    ) throws -> Int {
        precondition(dtype == .f32 || dtype == .bf16, "SafeTensorsWriter writes F32 or BF16")
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for e in entries {
            let bytes = e.shape.reduce(1, *) * e.dtype(dtype).byteSize
            header[e.name] = [
                "dtype": SafeTensorsFile.name(e.dtype(dtype)), "shape": e.shape,
                "data_offsets": [offset, offset + bytes],
            ]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))  // data starts 8-aligned
        try AtomicFile.write(to: path) { out in
            var length = UInt64(json.count).littleEndian
            try out.write(contentsOf: Data(bytes: &length, count: 8))
            try out.write(contentsOf: json)
            for e in entries {
                let values: [Float]
                switch e.source {
                case .state(let t):
                    try out.write(contentsOf: Data(bytesNoCopy: t.pointer, count: t.byteCount, deallocator: .none))
                    continue
                case .floats(let produce): values = produce()
                }
                precondition(
                    values.count == e.shape.reduce(1, *),
                    "SafeTensorsWriter: \(e.name) has \(values.count) values for shape \(e.shape)")
                if dtype == .f32 {
                    try values.withUnsafeBytes { try out.write(contentsOf: Data($0)) }
                } else {
                    var bits = [UInt16](repeating: 0, count: values.count)
                    values.withUnsafeBufferPointer { v in
                        bits.withUnsafeMutableBufferPointer { Conversions.toBF16(v, $0) }
                    }
                    try bits.withUnsafeBytes { try out.write(contentsOf: Data($0)) }
                }
            }
        }
        return offset
    }
}

/// Writes a file through a temporary sibling and a rename, so a reader never sees half a file.
enum AtomicFile {
    static func write(_ data: Data, to path: String) throws {
        try write(to: path) { try $0.write(contentsOf: data) }
    }

    static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let temporary = path + ".partial"
        do {
            guard FileManager.default.createFile(atPath: temporary, contents: nil),
                let handle = FileHandle(forWritingAtPath: temporary)
            else {
                throw CocoaError(.fileWriteNoPermission)
            }
            do {
                try body(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            if rename(temporary, path) != 0 { throw CocoaError(.fileWriteUnknown) }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw FormatError(
                file: path, problem: "cannot write the file (\(error.localizedDescription))",
                fix: "Check that the folder exists, is writable and has space.")
        }
    }
}
