import ArgumentParser
import Foundation
import Formats
import TensorCore

extension DType: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

extension GGMLType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}

struct Export: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case hf, gguf }

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
    var ggufType: GGMLType = .f16
    @Option(help: "Largest safetensors shard, in MiB.")
    var shardMib = 5120
    @Flag(help: "Write into a directory that already has files (they may be replaced).")
    var force = false

    func validate() throws {
        guard dtype == .f32 || dtype == .bf16 else { throw ValidationError("--dtype must be f32 or bf16") }
        guard shardMib > 0 else { throw ValidationError("--shard-mib must be positive") }
        if format == .gguf {
            guard GGUFModel.exportTypes.contains(ggufType) else {
                throw ValidationError(
                    "--type must be one of \(GGUFModel.exportTypes.map(\.name).joined(separator: ", "))")
            }
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
            for note in try GGUFModel.export(loaded, to: output, type: ggufType) { print("note: \(note)") }
        }
        print("wrote \(output)")
    }
}
