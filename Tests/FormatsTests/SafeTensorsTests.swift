import Foundation
import Testing
@testable import Formats

@Suite("safetensors headers")
struct SafeTensorsTests {
    /// A file with `header` as its JSON and `dataBytes` zero bytes of data.
    func file(_ name: String, _ header: String, dataBytes: Int) throws -> String {
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) }
        bytes += Array(header.utf8) + [UInt8](repeating: 0, count: dataBytes)
        return try scratchFile(name, bytes)
    }

    @Test("a valid header reads")
    func valid() throws {
        let path = try file("ok.safetensors", #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#, dataBytes: 24)
        let f = try SafeTensorsFile(path: path)
        #expect(f.tensors["a"]?.count == 4 && f.tensors["b"]?.dtype == .bf16)
    }

    @Test("bad headers are refused with the tensor named", arguments: [
        (#"{"a": [1, 2"#, "not a JSON object"),
        (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}"#, "outside the 16 data bytes"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, "needs 8 bytes"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, "overlap"),
        (#"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, "dtype I64"),
        (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, "lacks dtype"),
    ])
    func badHeaders(header: String, expected: String) throws {
        let path = try file("bad-\(abs(header.hashValue)).safetensors", header, dataBytes: 16)
        let error = try #require(throws: FormatError.self) { try SafeTensorsFile(path: path) }
        #expect(error.file == path)
        #expect(error.problem.contains(expected), "\(error.problem)")
    }

    @Test("a header longer than the file is refused")
    func truncatedHeader() throws {
        var bytes = withUnsafeBytes(of: UInt64(1000).littleEndian) { Array($0) }
        bytes += Array("{}".utf8)
        let path = try scratchFile("short.safetensors", bytes)
        let error = try #require(throws: FormatError.self) { try SafeTensorsFile(path: path) }
        #expect(error.problem.contains("claims 1000 bytes"))
    }

    @Test("a GGUF tensor of an unsupported ggml type is named with the supported types")
    func unknownGGMLType() throws {
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        var bytes = Array("GGUF".utf8) + u32(3) + u64(1) + u64(0)
        bytes += u64(3) + Array("w.x".utf8) + u32(1) + u64(32) + u32(16) + u64(0)  // type 16 = IQ2_XXS
        bytes += [UInt8](repeating: 0, count: 64)
        let path = try scratchFile("iq2.gguf", bytes)
        let error = try #require(throws: FormatError.self) { try GGUFFile(path: path) }
        #expect(error.problem.contains("'w.x' has ggml type 16") && error.fix.contains("Q4_K"))
    }
}
