import ArgumentParser
import Formats
import Llama
import Methods
import TensorCore

extension Bench {
    /// How QFT's weight format trades error for speed: reconstruction error of a real model's matrices and the
    /// speed of the INT8 kernels, per block size, side by side.
    struct Quantization: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                """
                INT8 dense-and-sparse weights: reconstruction error of a model's matrices and kernel speed per block \
                size.
                """
        )
        @Option(
            help:
                """
                Model whose weights are measured (a Hugging Face directory, GGUF or llama2.c .bin); random N(0, 0.02²) \
                weights of --shape when omitted.
                """
        )
        var model: String?
        @Option(help: "Tokenizer (llama2.c models only).")
        var tokenizer: String?
        @Option(help: "Built-in shape for random weights.")
        var shape = "smollm2-135m"
        @Option(parsing: .upToNextOption, help: "Block sizes to compare; 0 is one scale per row.")
        var blocks: [Int] = [0, 64, 128, 256, 1024]
        @Option(parsing: .upToNextOption, help: "Outlier fractions to compare.")
        var outliers: [Double] = [0, 0.01]
        @Option(help: "Values per kernel timing run.")
        var count = 1 << 24
        @OptionGroup var options: KernelBenchOptions

        func run() throws {
            GEMM.setThreads(options.threads)
            let source: any ParameterStore
            if let model {
                source = try ModelFile.load(model, tokenizer: tokenizer).model.store
            } else {
                guard let c = LlamaConfig.builtinShapes[shape] else {
                    throw ValidationError("unknown shape '\(shape)'")
                }
                let store = FP32ParameterStore(layout: ParameterLayout(c))
                store.initializeRandomly(Philox(seed: 1))
                source = store
            }
            print(
                """
                weights: \(model ?? "random \(shape)"); relative L2 error ‖Ŵ − W‖ / ‖W‖ over every matrix (norms stay \
                fp32)
                """
            )
            print(
                """
                | block | outliers | relative error | bytes per matrix value | quantize, stochastic (ns/value) | \
                dequantize (ns/value) |
                """
            )
            print("| --- | --- | --- | --- | --- | --- |")
            for block in blocks {
                let (quantizeTime, dequantizeTime) = kernelTimes(
                    block == 0 ? source.layout.parameters[source.layout.layers[0].gate].shape[1] : block)
                for fraction in outliers {
                    var settings = DenseSparseStore.Settings()
                    (settings.blockSize, settings.outlierFraction) = (block, fraction)
                    let store = try DenseSparseStore(
                        converting: source, settings: settings, seed: 1, ledger: MemoryLedger())
                    var error = 0.0, norm = 0.0, values = 0, bytes = 0
                    for id in source.layout.parameters.indices where store.isQuantized(id) {
                        source.withFloats(id) { w in
                            let original = Array(w)
                            store.withFloats(id) { q in
                                for i in q.indices {
                                    error += Double(q[i] - original[i]) * Double(q[i] - original[i])
                                    norm += Double(original[i]) * Double(original[i])
                                }
                            }
                            values += w.count
                        }
                        bytes += DenseSparseStore.bytes(of: source.layout.parameters[id], settings: settings)
                    }
                    print(
                        String(
                            format: "| %@ | %.1f%% | %.5f | %.3f | %.3f | %.3f |", block == 0 ? "row" : "\(block)",
                            100 * fraction,
                            (error / norm).squareRoot(), Double(bytes) / Double(values), quantizeTime, dequantizeTime))
                }
            }
        }

        /// Median ns per value of stochastic quantization and of dequantization of `count` values in blocks of `block`.
        func kernelTimes(_ block: Int) -> (Double, Double) {
            let ledger = MemoryLedger()
            let x = AlignedBuffer<Float>(count: count, category: .workspace, ledger: ledger)
            let q = AlignedBuffer<Int8>(count: count, category: .workspace, ledger: ledger)
            let scales = AlignedBuffer<Float>(
                count: Int8Blocks.blockCount(count, blockSize: block), category: .workspace, ledger: ledger)
            Philox(seed: 2).fillNormal(x.buffer, stream: 0)
            func median(_ body: () -> Void) -> Double { options.median(body) * 1e9 / Double(count) }  // ns per value
            let rng = Philox(seed: 3)
            let quantize = median {
                Int8Blocks.quantize(
                    x.pointer, count: count, blockSize: block, into: q.pointer, scales: scales.pointer,
                    rounding: .stochastic(rng, stream: 1, offset: 0))
            }
            let dequantize = median {
                Int8Blocks.dequantize(
                    q.pointer, scales: scales.pointer, count: count, blockSize: block, into: x.pointer)
            }
            return (quantize, dequantize)
        }
    }
}
