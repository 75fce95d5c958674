import ArgumentParser
import Foundation
import Formats
import TensorCore

extension DType: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

struct Export: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case hf, gguf }
    /// The GGUF tensor types export writes, by their llama.cpp names.
    enum GGUFType: String, ExpressibleByArgument, CaseIterable {
        case f32, f16, bf16, q8_0
        var type: GGMLType {
            switch self {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            case .q8_0: .q8_0
            }
        }
    }

    static let configuration = CommandConfiguration(
        abstract:
            "Write a loaded model as a Hugging Face directory (config.json, safetensors, tokenizers) or a GGUF file.")

    @OptionGroup var source: ModelOptions
    @Option(help: "Output directory (hf) or file (gguf).")
    var output: String
    @Option(help: "hf: a Hugging Face directory; gguf: one GGUF file for llama.cpp, Ollama, LM Studio.")
    var format: Format = .hf
    @Option(help: "hf: weight dtype, f32 or bf16.")
    var dtype: DType = .f32
    @Option(name: .customLong("type"), help: "gguf: the matrices' type, f32, f16, bf16 or q8_0 (the norms stay f32).")
    var ggufType: GGUFType = .f16
    @Option(help: "Largest safetensors shard, in MiB.")
    var shardMib = 5120
    @Flag(help: "Write into a directory that already has files (they may be replaced).")
    var force = false

    func validate() throws {
        guard dtype == .f32 || dtype == .bf16 else { throw ValidationError("--dtype must be f32 or bf16") }
        guard shardMib > 0 else { throw ValidationError("--shard-mib must be positive") }
        if format == .gguf {
            if FileManager.default.fileExists(atPath: output) && !force {
                throw ValidationError("\(output) exists; choose a new file name or pass --force")
            }
            return
        }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        if !existing.isEmpty && !force {
            throw ValidationError(
                "\(output) already holds \(existing.count) files; choose an empty directory or pass --force")
        }
    }

    func run() throws {
        signal(SIGXFSZ, SIG_IGN)  // a file-size limit gives a write error, reported, instead of killing the export
        let loaded = try source.load()
        switch format {
        case .hf:
            let notes = try HFDirectory.export(loaded, to: output, dtype: dtype, shardBytes: shardMib << 20)
            for note in notes { print("not written: \(note)") }
        case .gguf:
            for note in try GGUFModel.export(loaded, to: output, type: ggufType.type) { print("note: \(note)") }
        }
        print("wrote \(output)")
    }
}
