import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore
import Training

extension Bench {
    /// Loading a Hugging Face directory into the store a run trains in, with its peak memory.
    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                """
                Load a Hugging Face directory tensor by tensor into a training store; print time, ledger peak and peak \
                RSS.
                """
        )
        @Argument(
            help: "The directory (with --shape: where a random model of that shape is written first, as sharded bf16).")
        var directory: String
        @Option(help: "Write a model of this built-in shape with random weights to the directory first.")
        var shape: String?
        @Option(help: "The store to load into: fp32, bf16 (int8: QFT's, with default settings).")
        var weights: TrainingOptions.WeightFormat = .bf16
        @Option(help: "Threads for the conversions.")
        var threads = 2

        func run() throws {
            GEMM.setThreads(threads)
            if let shape {
                guard let c = LlamaConfig.builtinShapes[shape] else {
                    throw ValidationError("unknown shape '\(shape)'")
                }
                let random = RandomParameterStore(layout: ParameterLayout(c), seed: 1)
                let start = monotonicNanoseconds()
                try HFDirectory.export(
                    try LoadedModel(bytesTokenizer: try LlamaModel(config: c, store: random)), to: directory,
                    dtype: .bf16, shardBytes: 2 << 30)
                print(
                    String(
                        format: "wrote %@ (%@, random weights, bf16 shards) in %.1f s", directory, shape,
                        Double(monotonicNanoseconds() - start) * 1e-9))
            }
            MemoryLedger.shared.resetPeak()
            ProcessMemory.resetPeak()
            let rssBefore = ProcessMemory.peakResidentBytes, start = monotonicNanoseconds()
            var options = TrainingOptions()
            switch weights {
            case .fp32: options.weights = .fp32
            case .bf16: options.weights = .bf16
            case .int8: options.method = .qft
            }
            let loaded = try HFDirectory.load(directory, lazy: true)
            let model = try Trainer.model(loaded.model, for: options)
            let seconds = Double(monotonicNanoseconds() - start) * 1e-9
            let snap = MemoryLedger.shared.snapshot(), format = PassBenchmark.format(bytes:)
            print(
                String(
                    format: "loaded %@ parameters into a %@ store in %.1f s",
                    PassBenchmark.format(count: model.layout.parameterCount),
                    options.weightFormat.rawValue, seconds))
            print(
                """
                ledger peak \(format(snap.peakTotal)) (\(PassBenchmark.categories(snap))); store now \
                \(format(snap.currentTotal))
                """
            )
            print("process peak RSS \(format(ProcessMemory.peakResidentBytes)) (\(format(rssBefore)) before loading)")
        }
    }
}
