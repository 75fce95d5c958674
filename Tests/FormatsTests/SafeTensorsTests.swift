import Foundation
import Testing
import TensorCore
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
        let path = try file(
            "ok.safetensors",
            #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"#
                + #""b":{"dtype":"BF16","shape":[4],"data_offsets":[16,24]}}"#,
            dataBytes: 24)
        let f = try SafeTensorsFile(path: path)
        #expect(f.tensors["a"]?.count == 4 && f.tensors["b"]?.dtype == .bf16)
    }

    @Test(
        "bad headers are refused with the tensor named",
        arguments: [
            (#"{"a": [1, 2"#, "not a JSON object"),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}"#, "outside the 16 data bytes"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, "needs 8 bytes"),
            (
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                    + #""b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                "overlap"
            ),
            (#"{"a":{"dtype":"I64","shape":[2],"data_offsets":[0,16]}}"#, "dtype I64"),
            (#"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, "lacks dtype"),
        ])
    func badHeaders(header: String, expected: String) throws {
        let path = try file("bad-\(abs(header.hashValue)).safetensors", header, dataBytes: 16)
        let error = try #require(throws: FormatError.self) { try SafeTensorsFile(path: path) }
        #expect(error.file == path)
        #expect(error.problem.contains(expected), "\(error.problem)")
    }

    @Test("state tensors keep their own types (I8, I32, F32) next to BF16 float tensors")
    func stateTensors() throws {
        let ledger = MemoryLedger()
        let q = AlignedBuffer<Int8>(count: 5, category: .optimizerState, ledger: ledger)
        let i = AlignedBuffer<Int32>(count: 3, category: .optimizerState, ledger: ledger)
        for k in 0..<5 { q.pointer[k] = Int8(k * 50 - 127) }
        for k in 0..<3 { i.pointer[k] = Int32(k) * 1_000_000 - 7 }
        let path = try scratchFile("state.safetensors", [])
        try SafeTensorsWriter.write(
            [
                SafeTensorsWriter.Entry(StateTensor("q", q)), SafeTensorsWriter.Entry(StateTensor("i", i)),
                SafeTensorsWriter.Entry(name: "w", shape: [2]) { [1.5, -2] },
            ], to: path, dtype: .bf16)
        let f = try SafeTensorsFile(path: path)
        #expect(f.tensors["q"]?.dtype == .i8 && f.tensors["i"]?.dtype == .i32 && f.tensors["w"]?.dtype == .bf16)
        let q2 = AlignedBuffer<Int8>(count: 5, category: .optimizerState, ledger: ledger)
        let i2 = AlignedBuffer<Int32>(count: 3, category: .optimizerState, ledger: ledger)
        f.readBytes(f.tensors["q"]!, into: q2.pointer)
        f.readBytes(f.tensors["i"]!, into: i2.pointer)
        #expect(Array(q2.buffer) == Array(q.buffer) && Array(i2.buffer) == Array(i.buffer))
        var w = [Float](repeating: 0, count: 2)
        f.read(f.tensors["w"]!, into: &w)
        #expect(w == [1.5, -2])
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
