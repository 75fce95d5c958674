import ArgumentParser
import Foundation
import Formats
import TensorCore

extension DType: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a loaded model as a Hugging Face directory (config.json, safetensors, tokenizer files).")

    @OptionGroup var source: ModelOptions
    @Option(help: "Output directory.")
    var output: String
    @Option(help: "Weight dtype: f32 or bf16.")
    var dtype: DType = .f32
    @Option(help: "Largest safetensors shard, in MiB.")
    var shardMib = 5120
    @Flag(help: "Write into a directory that already has files (they may be replaced).")
    var force = false

    func validate() throws {
        guard dtype == .f32 || dtype == .bf16 else { throw ValidationError("--dtype must be f32 or bf16") }
        guard shardMib > 0 else { throw ValidationError("--shard-mib must be positive") }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        if !existing.isEmpty && !force {
            throw ValidationError(
                "\(output) already holds \(existing.count) files; choose an empty directory or pass --force")
        }
    }

    func run() throws {
        signal(SIGXFSZ, SIG_IGN)  // a file-size limit gives a write error, reported, instead of killing the export
        let loaded = try source.load()
        let notes = try HFDirectory.export(loaded, to: output, dtype: dtype, shardBytes: shardMib << 20)
        for note in notes { print("not written: \(note)") }
        print("wrote \(output)")
    }
}
