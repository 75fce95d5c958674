import ArgumentParser
import Foundation
import Llama
import TensorCore
import Training

extension Bench {
    /// Every method's training step in one process, one after the other on the same shape and batch.
    struct Methods: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every method's step side by side in one process: one table (time, memory by category, RSS, estimate), as Markdown and JSON.")
        @OptionGroup var options: PassOptions
        @Option(help: "Comma-separated methods to run (default: all): \(MethodCatalog.entries.map(\.label).joined(separator: ", ")).")
        var methods = ""
        @Option(name: .customLong("set"), help: "Override one setting for every method: section.key=value (repeatable), e.g. method.rank=64.")
        var sets: [String] = []
        @Option(help: "Where the table goes: OUTPUT.md and OUTPUT.json.")
        var output = "bench-methods"
        @Option(help: "A Python with torch and transformers: run the PyTorch peer script in this run for a PyTorch column.")
        var peer: String?
        @Option(help: "The PyTorch peer script.")
        var peerScript = "scripts/peer_bench.py"
        @Option(help: "Comma-separated precisions to run every method in, side by side (e.g. fp32,bf16; default: --precision).")
        var precisions = ""

        func run() throws {
            let entries: [MethodCatalog.Entry]
            do { entries = try MethodCatalog.select(methods.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
            catch let e as TrainingError { throw ValidationError(e.message) }
            let list = precisions.isEmpty ? [options.precision] : try precisions.split(separator: ",").map { name in
                guard let p = Precision(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--precisions: '\(name)' is not a precision; choose from \(Precision.allCases.map(\.rawValue))")
                }
                return p
            }
            var rows: [MethodBenchmarkTable.Row] = []
            for var entry in entries.flatMap({ e in list.map { (e, $0) } }).map({ e, p in
                var entry = e
                if list.count > 1 { entry.label += " \(p.rawValue)" }
                entry.settings.insert("train.precision=\(p.rawValue)", at: 0)
                return entry
            }) {
                entry.settings += sets
                let planned: TrainingOptions
                do {
                    planned = try RunConfig.load(nil, overrides: entry.settings + ["train.batch=\(options.batch)", "train.seq=\(options.seq)"])
                        .trainingOptions()
                } catch let e as TrainingError { throw ValidationError("\(entry.label): \(e.message)") }
                print("== \(entry.label): \(entry.settings.joined(separator: " "))")
                var o = options
                o.precision = planned.precision
                let r = try StepBenchmark.run(planned, o, label: "step \(entry.label)")
                let bytes = { (plan: [MemoryCategory: Int]) in Dictionary(uniqueKeysWithValues: plan.map { ($0.rawValue, $1) }) }
                rows.append(MethodBenchmarkTable.Row(
                    label: entry.label, settings: entry.settings, stepSeconds: r.pass.seconds, medianSeconds: r.pass.median,
                    tokensPerSecond: Double(options.batch * options.seq) / (r.pass.median + (r.periodicSeconds ?? 0)), gemmSeconds: r.pass.gemmSeconds,
                    gemmFlops: r.pass.gemmFlops, ledgerPeak: bytes(r.pass.ledger.peak), ledgerPeakTotal: r.pass.ledger.peakTotal,
                    estimate: bytes(r.estimate), estimateTotal: r.estimate.values.reduce(0, +), peakRSS: r.pass.peakRSS, details: r.details,
                    periodicSeconds: r.periodicSeconds))
            }
            var table = MethodBenchmarkTable(shape: options.shape, batch: options.batch, seq: options.seq, threads: options.threads,
                                             repetitions: options.repetitions, machine: Self.machine,
                                             date: ISO8601DateFormatter().string(from: Date()), rows: rows)
            if let peer { try PeerBenchmark.attach(to: &table, python: peer, script: peerScript, config: options.config) }
            let markdown = MethodBenchmarkReport.markdown(table)
            try table.json().write(to: URL(fileURLWithPath: output + ".json"))
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: output + ".md"))
            print("\n" + markdown)
            print("wrote \(output).md and \(output).json")
        }

        /// The CPU's model name and the cores this process may use.
        static var machine: String {
            let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
                .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
            return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
        }
    }
}
