import ArgumentParser
import Foundation
import Llama
import TensorCore
import Training

extension Bench {
    /// Every method's training step in one process, one after the other on the same shape and batch.
    struct Methods: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                """
                Every method's step side by side in one process: one table (time, memory by category, RSS, estimate), \
                as Markdown and JSON.
                """
        )
        @OptionGroup var options: PassOptions
        @Option(
            help:
                """
                Comma-separated methods to run (default: all): \
                \(MethodCatalog.entries.map(\.label).joined(separator: ", ")).
                """
        )
        var methods = ""
        @Option(
            name: .customLong("set"),
            help:
                """
                Override one setting for every method that reads it: section.key=value (repeatable), e.g. \
                method.rank=64.
                """
        )
        var sets: [String] = []
        @Option(help: "Where the table goes: OUTPUT.md and OUTPUT.json.")
        var output = "bench-methods"
        @Option(
            help: "A Python with torch and transformers: run the PyTorch peer script in this run for a PyTorch column.")
        var peer: String?
        @Option(help: "The PyTorch peer script, with --peer (the repository's scripts/peer_bench.py).")
        var peerScript: String?
        @Option(
            help:
                """
                Comma-separated precisions to run every method in, side by side (e.g. fp32,bf16; default: \
                --precision).
                """
        )
        var precisions = ""
        @Option(
            help:
                """
                Run each method as `leantune estimate --budget` plans it at this batch and length (checkpointing, \
                weight store), e.g. 24GiB; a method that does not fit is listed with its estimate, not run.
                """
        )
        var budget: String?

        func run() throws {
            let entries: [MethodCatalog.Entry]
            entries = try MethodCatalog.select(
                methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            let list =
                precisions.isEmpty
                ? [options.precision]
                : try precisions.split(separator: ",").map { name in
                    guard let p = Precision(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                        throw ValidationError(
                            """
                            --precisions: '\(name)' is not a precision; choose from \
                            \(Precision.allCases.map(\.rawValue))
                            """
                        )
                    }
                    return p
                }
            let budgetBytes: Int?
            do { budgetBytes = try budget.map(MemorySize.parse) } catch let e as TrainingError {
                throw TrainingError(message: "--budget: \(e.message)")
            }
            var rows: [MethodBenchmarkTable.Row] = [], misses: [MethodBenchmarkTable.Miss] = []
            for var entry in entries.flatMap({ e in list.map { (e, $0) } }).map({ e, p in
                var entry = e
                if list.count > 1 { entry.label += " \(p.rawValue)" }
                entry.settings.insert("train.precision=\(p.rawValue)", at: 0)
                return entry
            }) {
                entry.settings += entry.applicable(sets)
                if let budgetBytes {
                    let (fits, settings) = try planned(entry, budget: budgetBytes)
                    guard let fits else {
                        print(
                            """
                            == \(entry.label): does not fit \(PassBenchmark.format(bytes: budgetBytes)) at \
                            \(options.batch) × \(options.seq) (estimate \
                            \(PassBenchmark.format(bytes: settings.bytes))): not run
                            """
                        )
                        misses.append(
                            MethodBenchmarkTable.Miss(
                                label: entry.label, settings: entry.settings + settings.settings,
                                estimateTotal: settings.bytes))
                        continue
                    }
                    entry.settings += fits
                }
                let planned: TrainingOptions
                do {
                    planned = try RunConfig.load(
                        nil, overrides: entry.settings + ["train.batch=\(options.batch)", "train.seq=\(options.seq)"]
                    )
                    .trainingOptions()
                } catch let e as TrainingError { throw TrainingError(message: "\(entry.label): \(e.message)") }
                print("== \(entry.label): \(entry.settings.joined(separator: " "))")
                var o = options
                o.precision = planned.precision
                let r = try StepBenchmark.run(planned, o, label: "step \(entry.label)")
                let bytes = { (plan: [MemoryCategory: Int]) in
                    Dictionary(uniqueKeysWithValues: plan.map { ($0.rawValue, $1) })
                }
                rows.append(
                    MethodBenchmarkTable.Row(
                        label: entry.label, settings: entry.settings, stepSeconds: r.pass.seconds,
                        medianSeconds: r.pass.median,
                        tokensPerSecond: Double(options.batch * options.seq)
                            / (r.pass.median + (r.periodicSeconds ?? 0)), gemmSeconds: r.pass.gemmSeconds,
                        gemmFlops: r.pass.gemmFlops, ledgerPeak: bytes(r.pass.ledger.peak),
                        ledgerPeakTotal: r.pass.ledger.peakTotal,
                        estimate: bytes(r.estimate), estimateTotal: r.estimate.values.reduce(0, +),
                        peakRSS: r.pass.peakRSS, details: r.details,
                        periodicSeconds: r.periodicSeconds, ledgerPeakBF16: bytes(r.pass.ledger.peakBF16)))
            }
            var table = MethodBenchmarkTable(
                shape: options.shape, batch: options.batch, seq: options.seq, threads: options.threads,
                repetitions: options.repetitions, machine: RunRecord.machine,
                date: ISO8601DateFormatter().string(from: Date()), rows: rows)
            if let budgetBytes { (table.budget, table.misses) = (budgetBytes, misses) }
            if let peer {
                guard let peerScript else {
                    throw ValidationError("--peer needs --peer-script FILE, e.g. scripts/peer_bench.py")
                }
                try PeerBenchmark.attach(to: &table, python: peer, script: peerScript, config: options.config)
            }
            let markdown = MethodBenchmarkReport.markdown(table)
            try table.json().write(to: URL(fileURLWithPath: output + ".json"))
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: output + ".md"))
            print("\n" + markdown)
            print("wrote \(output).md and \(output).json")
        }

        /// The budget planner's choice for `entry` at this batch and length: the settings it adds (checkpointing,
        /// weight store) where it fits, else nil and the smallest plan's settings and bytes.
        func planned(_ entry: MethodCatalog.Entry, budget: Int) throws -> ([String]?, (settings: [String], bytes: Int))
        {
            let result: BudgetPlanner.Result
            do {
                result = try BudgetPlanner.plan(
                    options.config, budget: budget, batch: options.batch, seq: options.seq, threads: options.threads,
                    calibration: nil, entries: [entry], fixedSize: true
                ) { e, b, t, checkpointing, weights in
                    try RunConfig.load(
                        nil,
                        overrides: e.settings + [
                            "train.batch=\(b)", "train.seq=\(t)", "method.checkpointing=\(checkpointing)",
                        ]
                            + (weights.map { ["train.weights=\($0.rawValue)"] } ?? [])
                    ).trainingOptions()
                }
            } catch let e as TrainingError { throw TrainingError(message: "\(entry.label): \(e.message)") }
            let settings = { (c: BudgetPlanner.Choice) in
                ["method.checkpointing=\(c.checkpointing)"] + (c.weights == .bf16 ? ["train.weights=bf16"] : [])
            }
            if let fit = result.fits.first { return (settings(fit), (settings(fit), fit.bytes)) }
            guard let miss = result.misses.first else {
                throw ValidationError("\(entry.label): the budget planner returned no plan")
            }
            return (nil, (settings(miss), miss.bytes))
        }
    }
}
