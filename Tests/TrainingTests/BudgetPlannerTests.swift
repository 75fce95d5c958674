import Foundation
import Testing
import Llama
import TensorCore
@testable import Training

@Suite("Budget planner")
struct BudgetPlannerTests {
    static let shape = LlamaConfig.builtinShapes["smollm2-135m"]!

    static func options(
        _ entry: MethodCatalog.Entry, _ batch: Int, _ seq: Int, _ checkpointing: Bool,
        _ weights: TrainingOptions.Weights? = nil, precision: Precision = .fp32
    ) throws -> TrainingOptions {
        try RunConfig.load(
            nil,
            overrides: entry.settings + [
                "train.batch=\(batch)", "train.seq=\(seq)", "method.checkpointing=\(checkpointing)",
                "train.precision=\(precision.rawValue)",
            ]
                + (weights.map { ["train.weights=\($0.rawValue)"] } ?? [])
        )
        .trainingOptions()
    }

    @Test(
        """
        llama-2-7b in bf16 within 24 GiB: mezo, dizo, qft, lsp-offload, galore and adarankgrad fit (bf16 weights where \
        needed); adamw does not
        """
    )
    func sevenBillion() throws {
        let shape = LlamaConfig.builtinShapes["llama-2-7b"]!
        let result = try BudgetPlanner.plan(shape, budget: 24 << 30, batch: 1, seq: 256, threads: 2, calibration: nil) {
            e, b, t, c, w in
            try Self.options(e, b, t, c, w, precision: .bf16)
        }
        let fits = Dictionary(result.fits.map { ($0.label, $0) }, uniquingKeysWith: { a, _ in a })
        for label in ["mezo", "dizo", "qft", "lsp-offload", "galore", "adarankgrad"] {
            #expect(
                fits[label] != nil,
                """
                \(label) does not fit: \
                \(result.misses.first { $0.label == label }.map { "\($0.bytes >> 20) MiB" } ?? "?")
                """
            )
        }
        #expect(fits["mezo"]?.weights == .bf16 && fits["qft"]?.weights == .int8 && fits["galore"]?.weights == .bf16)
        #expect(fits["adamw"] == nil)
        // The same shape in fp32 leaves only QFT.
        let fp32 = try BudgetPlanner.plan(shape, budget: 24 << 30, batch: 1, seq: 256, threads: 2, calibration: nil) {
            e, b, t, c, _ in
            try Self.options(e, b, t, c)
        }
        #expect(fp32.fits.map(\.label) == ["qft"])
    }

    @Test(
        """
        fixed size (bench methods --budget): only the asked batch and length are tried; a method that fits only \
        smaller is a miss at that size
        """
    )
    func fixedSize() throws {
        let budget = 3 << 29, entries = try MethodCatalog.select(["adamw", "mezo"])
        let result = try BudgetPlanner.plan(
            Self.shape, budget: budget, batch: 4, seq: 256, threads: 2, calibration: nil, entries: entries,
            fixedSize: true
        ) { try Self.options($0, $1, $2, $3, $4) }
        #expect(result.fits.map(\.label) == ["mezo"] && result.fits.allSatisfy { $0.batch == 4 && $0.seq == 256 })
        let miss = try #require(result.misses.first)
        #expect(
            result.misses.count == 1 && miss.label == "adamw" && miss.batch == 4 && miss.seq == 256
                && miss.bytes > budget)
        // Without fixedSize the planner goes down to smaller batches and lengths (adamw's smallest plan is one of
        // them).
        let free = try BudgetPlanner.plan(
            Self.shape, budget: budget, batch: 4, seq: 256, threads: 2, calibration: nil, entries: entries
        ) {
            try Self.options($0, $1, $2, $3, $4)
        }
        #expect(free.misses.contains { $0.label == "adamw" && $0.batch * $0.seq < 4 * 256 })
    }

    static func bytes(
        _ entry: MethodCatalog.Entry, _ batch: Int, _ seq: Int, _ checkpointing: Bool,
        _ weights: TrainingOptions.Weights? = nil
    ) throws -> Int {
        MemoryPlan.estimate(shape, options: try options(entry, batch, seq, checkpointing, weights), threads: 2).values
            .reduce(0, +)
    }

    @Test("memory sizes parse in binary and decimal units; nonsense is an error naming it")
    func sizes() throws {
        #expect(try MemorySize.parse("4GiB") == 4 << 30)
        #expect(try MemorySize.parse("1.5 GiB") == 3 << 29)
        #expect(try MemorySize.parse("512MiB") == 512 << 20)
        #expect(try MemorySize.parse("4G") == 4 << 30)
        #expect(try MemorySize.parse("4GB") == 4_000_000_000)
        #expect(try MemorySize.parse("1000") == 1000)
        for bad in ["abc", "-1GiB", "GiB", "4 parsecs", "0"] {
            #expect(throws: TrainingError.self) { try MemorySize.parse(bad) }
        }
    }

    @Test(
        """
        each method gets the first choice that fits, in the stated order: length, then batch, before either \
        checkpointing, bf16 weights, both
        """
    )
    func firstFittingChoice() throws {
        let budget = 3 << 29  // 1.5 GiB: between inference memory and full AdamW on SmolLM2's shape
        let result = try BudgetPlanner.plan(
            Self.shape, budget: budget, batch: 4, seq: 256, threads: 2, calibration: nil
        ) { try Self.options($0, $1, $2, $3, $4) }
        #expect(result.overhead == 0)
        #expect(Set(result.fits.map(\.label) + result.misses.map(\.label)) == Set(MethodCatalog.entries.map(\.label)))
        #expect(result.fits.contains { $0.label == "mezo" && $0.batch == 4 && $0.seq == 256 && !$0.checkpointing })
        #expect(
            result.misses.contains { $0.label == "adamw" }, "AdamW's weights, gradient and moments alone are 2.0 GiB")
        for fit in result.fits {
            let entry = MethodCatalog.entries.first { $0.label == fit.label }!
            let base = try Self.options(entry, fit.batch, fit.seq, fit.checkpointing).weightFormat
            let switched = fit.weights != base  // the planner chose bf16 weights over the method's fp32 ones
            #expect(!switched || (base == .fp32 && fit.weights == .bf16))
            let planned = try Self.bytes(entry, fit.batch, fit.seq, fit.checkpointing, switched ? .bf16 : nil)
            #expect(fit.bytes <= budget && fit.bytes == planned)
            // Every choice before it in the order (longer, or as long with a larger batch, or the same batch with an
            // earlier (checkpointing, weights) pair) misses.
            let pairs: [(Bool, TrainingOptions.Weights?)] = [(false, nil), (true, nil), (false, .bf16), (true, .bf16)]
            let position = pairs.firstIndex { $0.0 == fit.checkpointing && ($0.1 == nil) == !switched }!
            for seq in BudgetPlanner.halvings(256, floor: 64) where seq >= fit.seq {
                for batch in BudgetPlanner.halvings(4, floor: 1) where seq > fit.seq || batch >= fit.batch {
                    for (k, (checkpointing, weights)) in pairs.enumerated()
                    where seq > fit.seq || batch > fit.batch || k < position {
                        if weights != nil && base != .fp32 { continue }
                        if checkpointing && fit.zerothOrder { continue }
                        let earlier = try Self.bytes(entry, batch, seq, checkpointing, weights)
                        #expect(
                            earlier > budget,
                            "\(fit.label): \(batch) × \(seq) \(checkpointing) \(weights?.rawValue ?? "-") fits too")
                    }
                }
            }
        }
        for miss in result.misses {
            #expect(miss.bytes > budget)
        }
        #expect(result.fits.map(\.bytes) == result.fits.map(\.bytes).sorted(), "without a calibration: smallest first")
    }

    @Test(
        """
        with a calibration: its own setting expects its measured time with periodic work, checkpointing 4/3 of it, \
        more tokens proportionally more
        """
    )
    func calibratedTimes() throws {
        func row(_ label: String, seconds: Double, periodic: Double? = nil) -> MethodBenchmarkTable.Row {
            MethodBenchmarkTable.Row(
                label: label, settings: MethodCatalog.entries.first { $0.label == label }!.settings,
                stepSeconds: [seconds],
                medianSeconds: seconds, tokensPerSecond: 1024 / seconds, gemmSeconds: seconds, gemmFlops: 1,
                ledgerPeak: [:], ledgerPeakTotal: 1 << 30, estimate: [:], estimateTotal: 1 << 30,
                peakRSS: (1 << 30) + (100 << 20),
                details: [:], periodicSeconds: periodic)
        }
        let table = MethodBenchmarkTable(
            shape: "smollm2-135m", batch: 4, seq: 256, threads: 2, repetitions: 1, machine: "test", date: "today",
            rows: [row("adamw-fused", seconds: 6), row("mezo", seconds: 3), row("dizo", seconds: 2.5, periodic: 1)])
        let roomy = try BudgetPlanner.plan(
            Self.shape, budget: 8 << 30, batch: 4, seq: 256, threads: 2, calibration: table
        ) { try Self.options($0, $1, $2, $3, $4) }
        #expect(roomy.overhead == 100 << 20)
        #expect(
            roomy.fits.map(\.label) == ["mezo", "dizo", "adamw-fused"],
            "fastest per token first, a step's periodic work counted")
        #expect(zip(roomy.fits.map { $0.expectedSeconds! }, [3, 3.5, 6]).allSatisfy { abs($0 - $1) < 1e-9 })
        let entry = MethodCatalog.entries.first { $0.label == "adamw-fused" }!
        let checkpointed = try Self.bytes(entry, 4, 256, true)
        let tight = try BudgetPlanner.plan(
            Self.shape, budget: checkpointed + (100 << 20), batch: 4, seq: 256, threads: 2,
            calibration: table
        ) { try Self.options($0, $1, $2, $3, $4) }
        let fused = try #require(tight.fits.first { $0.label == "adamw-fused" })
        #expect(fused.checkpointing && fused.batch == 4)
        #expect(abs(fused.expectedSeconds! - 8) < 1e-9)
        let long = BudgetPlanner.work(Self.shape, batch: 4, seq: 512, checkpointing: false, backward: true)
        let short = BudgetPlanner.work(Self.shape, batch: 4, seq: 256, checkpointing: false, backward: true)
        #expect(long > 2 * short, "attention grows with the square of the length")
    }

    @Test("an unknown method or an unreadable calibration is an error that says what to do")
    func badInput() throws {
        #expect(throws: TrainingError.self) { try MethodCatalog.select(["adamw", "adam"]) }
        #expect(try MethodCatalog.select([]).count == MethodCatalog.entries.count)
        do {
            _ = try MethodBenchmarkTable.load("/nonexistent/bench.json")
            Issue.record("loaded a missing file")
        } catch let e as TrainingError {
            #expect(e.message.contains("/nonexistent/bench.json") && e.message.contains("leantune bench methods"))
        }
    }

    @Test("every catalog entry makes valid training options")
    func catalogIsValid() throws {
        for entry in MethodCatalog.entries {
            let o = try Self.options(entry, 4, 256, false)
            try o.validate()
            #expect(
                o.method.rawValue == entry.label
                    || (entry.label == "galore" || entry.label == "adarankgrad") && o.isFused)
        }
    }
}
