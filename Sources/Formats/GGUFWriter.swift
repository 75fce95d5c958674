import Foundation

/// Writes a GGUF version 3 file: the header, metadata, the tensor table, then each tensor's data aligned to
/// `general.alignment` (32). Written through a temporary file and a rename.
enum GGUFWriter {
    static let alignment = 32

    /// One tensor: its name, its ggml dimensions (fastest first), its type, and its bytes, made when written.
    struct Tensor {
        let name: String
        let dims: [Int]
        let type: GGMLType
        let bytes: () -> [UInt8]
    }

    /// A metadata value with the GGUF type llama.cpp reads it as.
    enum Value {
        case uint32(UInt32), int32(Int32), float32(Float), bool(Bool), string(String)
        case strings([String]), int32s([Int32]), float32s([Float])
    }

    static func write(metadata: [(String, Value)], tensors: [Tensor], to path: String) throws {
        var header = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func put(_ s: String) {
            put(UInt64(s.utf8.count))
            header.append(contentsOf: Array(s.utf8))
        }
        func put(_ value: Value) {
            switch value {
            case .uint32(let v): put(UInt32(4)); put(v)
            case .int32(let v): put(UInt32(5)); put(v)
            case .float32(let v): put(UInt32(6)); put(v.bitPattern)
            case .bool(let v): put(UInt32(7)); put(UInt8(v ? 1 : 0))
            case .string(let v): put(UInt32(8)); put(v)
            case .strings(let list):
                put(UInt32(9)); put(UInt32(8)); put(UInt64(list.count))
                for s in list { put(s) }
            case .int32s(let list):
                put(UInt32(9)); put(UInt32(5)); put(UInt64(list.count))
                for v in list { put(v) }
            case .float32s(let list):
                put(UInt32(9)); put(UInt32(6)); put(UInt64(list.count))
                for v in list { put(v.bitPattern) }
            }
        }
        put(UInt32(0x4655_4747))  // "GGUF"
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (key, value) in metadata {
            put(key)
            put(value)
        }
        var offset = 0
        for t in tensors {
            put(t.name)
            put(UInt32(t.dims.count))
            for d in t.dims { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(offset))
            offset = padded(offset + t.type.byteCount(t.dims.reduce(1, *)))
        }
        header.append(contentsOf: [UInt8](repeating: 0, count: padded(header.count) - header.count))
        try AtomicFile.write(to: path) { handle in
            try handle.write(contentsOf: header)
            for t in tensors {
                let bytes = t.bytes()
                try handle.write(contentsOf: bytes + [UInt8](repeating: 0, count: padded(bytes.count) - bytes.count))
            }
        }
    }

    static func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}
