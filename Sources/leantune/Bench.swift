import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed and memory (medians of repeated runs; never a test).",
        subcommands: [
            ForwardBackward.self, Forward.self, Step.self, Methods.self, Load.self, AttentionPass.self,
            TokenizerSpeed.self, RNG.self, Quantization.self,
        ])
}

/// Options shared by the model-pass benchmarks.
struct PassOptions: ParsableArguments {
    @Option(help: "Built-in shape: \(LlamaConfig.builtinShapes.keys.sorted().joined(separator: ", ")).")
    var shape = "smollm2-135m"
    @Option(help: "Sequences per batch (B).")
    var batch = 4
    @Option(help: "Tokens per sequence (T).")
    var seq = 256
    @Option(help: "Threads for GEMM and kernels.")
    var threads = 2
    @Option(help: "Timed repetitions (after one warm-up).")
    var repetitions = 5
    @Option(
        help: "GEMM precision: fp32, or bf16 (bf16 operands, fp32 accumulation; fp32 where the CPU has no AVX512-BF16)."
    )
    var precision: Precision = .fp32

    func validate() throws {
        guard LlamaConfig.builtinShapes[shape] != nil else {
            throw ValidationError("unknown shape '\(shape)'; choose one of \(LlamaConfig.builtinShapes.keys.sorted())")
        }
        try validateThreads(threads)
        guard batch > 0, seq > 0, repetitions >= 1 else {
            throw ValidationError("batch, seq and repetitions must be positive")
        }
        guard seq <= config.maxSequenceLength, batch * seq <= 1 << 17 else {
            throw ValidationError(
                """
                --seq is at most \(config.maxSequenceLength) for \(shape), and --batch × --seq at most \(1 << 17) \
                tokens
                """
            )
        }
    }

    var config: LlamaConfig { LlamaConfig.builtinShapes[shape]! }
}

extension Bench {
    struct ForwardBackward: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "forward-backward", abstract: "Forward + backward into a full gradient slab.")
        @OptionGroup var options: PassOptions
        @Flag(help: "Keep only each layer's input and recompute the rest in backward.")
        var checkpointing = false

        func run() throws {
            let (model, batch) = try PassBenchmark.setUp(options, converted: true)
            let grads = GradientSlab(layout: model.layout)
            PassBenchmark.report(
                options, model, label: "forward+backward (checkpointing \(checkpointing ? "on" : "off"))"
            ) {
                grads.zero()
                _ = try! model.lossAndGradients(batch, into: grads, checkpointing: checkpointing)
            }
        }
    }

    struct Forward: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forward-only loss (no activations kept).")
        @OptionGroup var options: PassOptions

        func run() throws {
            let (model, batch) = try PassBenchmark.setUp(options, converted: true)
            PassBenchmark.report(options, model, label: "forward-only loss") { _ = try! model.loss(batch) }
        }
    }
}

enum PassBenchmark {
    /// A model of the benchmark's shape with random weights, and a batch of random tokens. Unless `converted`, the
    /// weights are generated as they are read: convert them into the store a method trains in before timing.
    static func setUp(_ o: PassOptions, converted: Bool = false) throws -> (LlamaModel, TokenBatch) {
        GEMM.setThreads(o.threads)
        if let note = BLASCore.adjustment { print("note: \(note)") }
        var c = o.config
        c.maxSequenceLength = max(c.maxSequenceLength, o.seq)
        let random = RandomParameterStore(layout: ParameterLayout(c), seed: 1)
        // converted: fp32 weights, computing in `o.precision`
        let model =
            converted
            ? try LlamaModel(config: c, store: FP32ParameterStore(converting: random), bf16: o.precision.kernel.kernel)
            : try LlamaModel(config: c, store: random)
        if let note = o.precision.kernel.note { print(note) }
        let rng = Philox(seed: 2)
        let ids = (0..<o.batch * (o.seq + 1)).map {
            Int32(rng.bits(stream: 0, index: UInt64($0)) % UInt32(c.vocabSize))
        }
        let sequences = (0..<o.batch).map { Array(ids[$0 * (o.seq + 1)..<($0 + 1) * (o.seq + 1)]) }
        return (model, TokenBatch(sequences: sequences))
    }

    /// Each category's peak, with the bf16 bytes among it where there are any: "weights 0.25 GiB (bf16 0.25 GiB), …".
    static func categories(_ snap: MemoryLedger.Snapshot) -> String {
        MemoryCategory.allCases.compactMap { cat in
            snap.peak[cat].map { bytes in
                "\(cat.rawValue) \(format(bytes: bytes))"
                    + ((snap.peakBF16[cat] ?? 0) > 0 ? " (bf16 \(format(bytes: snap.peakBF16[cat] ?? 0)))" : "")
            }
        }.joined(separator: ", ")
    }

    /// sgemm rate on the MLP up-projection shape of this batch (M = B·T, N = F, K = D).
    /// (Its buffers stay out of the shared ledger, which measures the model.)
    static func sgemmRate(_ c: LlamaConfig, rows: Int) -> Double {
        let ledger = MemoryLedger()
        let a = AlignedBuffer<Float>(count: rows * c.dim, category: .workspace, ledger: ledger)
        let b = AlignedBuffer<Float>(count: c.ffnDim * c.dim, category: .workspace, ledger: ledger)
        let out = AlignedBuffer<Float>(count: rows * c.ffnDim, category: .workspace, ledger: ledger)
        Philox(seed: 3).fillUniform(a.buffer, stream: 0)
        Philox(seed: 3).fillUniform(b.buffer, stream: 1)
        var best = Double.infinity
        for _ in 0..<8 {
            let t0 = monotonicNanoseconds()
            GEMM.multiply(
                m: rows, n: c.ffnDim, k: c.dim, a.pointer, lda: c.dim, b.pointer, ldb: c.dim, transB: true,
                out.pointer, ldc: c.ffnDim)
            best = min(best, Double(monotonicNanoseconds() - t0) * 1e-9)
        }
        return 2 * Double(rows * c.ffnDim * c.dim) / best / 1e9
    }

    /// What ``report(_:_:label:_:)`` measured.
    struct Result {
        /// Seconds of each timed run.
        var seconds: [Double]
        var gemmFlops: Int
        /// Median seconds inside GEMM per run.
        var gemmSeconds: Double
        /// The better sgemm reference rate (GFLOP/s) before and after the runs.
        var sgemm: Double
        var ledger: MemoryLedger.Snapshot
        var peakRSS: Int
        var median: Double { seconds.sorted()[seconds.count / 2] }
    }

    /// Runs `body` once to warm up, then `o.repetitions` timed times, and prints time, GEMM share and memory.
    @discardableResult
    static func report(_ o: PassOptions, _ model: LlamaModel, label: String, _ body: () -> Void) -> Result {
        let c = model.config, tokens = o.batch * o.seq
        print(
            """
            shape \(o.shape): \(format(count: model.layout.parameterCount)) parameters; batch \(o.batch) × \(o.seq); \
            \(o.threads) threads; \(model.bf16 == nil ? "fp32" : "bf16") compute
            """
        )
        let sgemmBefore = sgemmRate(c, rows: tokens)
        body()  // warm-up: page in buffers, start BLAS threads
        var times: [Double] = [], gemmFlops = 0, gemmSeconds: [Double] = []
        for _ in 0..<o.repetitions {
            GEMM.resetCounters()
            let t0 = monotonicNanoseconds()
            body()
            times.append(Double(monotonicNanoseconds() - t0) * 1e-9)
            let s = GEMM.statistics
            gemmFlops = s.flops
            gemmSeconds.append(s.seconds)
        }
        let sgemmAfter = sgemmRate(c, rows: tokens), sgemm = max(sgemmBefore, sgemmAfter)
        print(
            String(
                format: "sgemm reference (%d×%d×%d, Bᵀ): %.1f GFLOP/s before the runs, %.1f after",
                tokens, c.ffnDim, c.dim, sgemmBefore, sgemmAfter))
        if min(sgemmBefore, sgemmAfter) < 0.85 * sgemm {
            print(
                """
                warning: the sgemm reference moved by more than 15% during the benchmark: the machine is busy; repeat \
                it
                """
            )
        }
        let median = times.sorted()[times.count / 2], best = times.min()!
        let gemmMedian = gemmSeconds.sorted()[gemmSeconds.count / 2]
        print(
            String(
                format: "%@: median %.3f s, min %.3f s over %d runs; %.0f tokens/s", label, median, best, times.count,
                Double(tokens) / median))
        print(
            String(
                format:
                    """
                    GEMM (attention regions included): %.1f GFLOP per run, %.3f s (%.0f%% of the run) at %.1f GFLOP/s; \
                    achieved %.1f GFLOP/s over the whole run (sgemm reference %.1f)
                    """,
                Double(gemmFlops) / 1e9, gemmMedian, 100 * gemmMedian / median, Double(gemmFlops) / gemmMedian / 1e9,
                Double(gemmFlops) / median / 1e9, sgemm))
        let snap = MemoryLedger.shared.snapshot()
        print("ledger peak: \(format(bytes: snap.peakTotal)) (\(categories(snap)))")
        let rss = ProcessMemory.peakResidentBytes
        print("process peak RSS: \(format(bytes: rss))")
        return Result(
            seconds: times, gemmFlops: gemmFlops, gemmSeconds: gemmMedian, sgemm: sgemm, ledger: snap, peakRSS: rss)
    }

    static func format(bytes: Int) -> String { String(format: "%.2f GiB", Double(bytes) / Double(1 << 30)) }
    static func format(count: Int) -> String { String(format: "%.1f M", Double(count) / 1e6) }
}
