import TensorCore
import Training
import Foundation

/// `leantune bench methods`' table as Markdown.
enum MethodBenchmarkReport {
    static func markdown(_ t: MethodBenchmarkTable) -> String {
        let gib = { (bytes: Int) in String(format: "%.2f", Double(bytes) / Double(1 << 30)) }
        let categories = MemoryCategory.allCases.map(\.rawValue).filter { c in
            t.rows.contains { ($0.ledgerPeak[c] ?? 0) > 0 }
        }
        let reference = t.rows.first { $0.label == "adamw" } ?? t.rows.first
        let misses = t.misses ?? []
        let peer = t.rows.contains { $0.pytorch != nil } || misses.contains { $0.pytorch != nil }
        let peerCells = { (p: MethodBenchmarkTable.Peer?) -> [String] in
            guard let p else { return ["—", "—"] }
            if let need = p.outOfMemory { return ["out of memory", "needs ≥ \(gib(need))"] }
            return [p.medianSeconds.map { String(format: "%.3f", $0) } ?? "—", p.peakRSS.map(gib) ?? "—"]
        }
        var lines = [
            "# Methods side by side: \(t.shape), batch \(t.batch) × \(t.seq), \(t.threads) threads",
            "",
            """
            \(t.machine); \(t.date). Step time is the median of \(t.repetitions) steps after one warm-up, all methods \
            in one process one after the other; 'with periodic work' adds what a run pays every so many steps, \
            timed once (DiZO's projection round / κ, GaLore's refresh of every matrix / its interval), and the ratio \
            uses it. Memory in GiB: the ledger's peak per category during the steps (in brackets the bf16 bytes among \
            it) and the peak of the total; the estimate is `leantune estimate` for the same settings; peak RSS is the \
            process's from the method's first step on\(peer ? "; PyTorch columns: the peer script in the same run" : "")
            """
                + (t.budget.map {
                    """
                    . Budget \(gib($0)) GiB: each method runs as `leantune estimate --budget` plans it at this batch \
                    (checkpointing, weight store)
                    """
                } ?? "") + ".",
            "",
        ]
        var header = [
            "method", "settings", "s/step", "with periodic work", "tokens/s", "vs \(reference?.label ?? "-")",
            "GEMM share",
        ]
        header += categories + ["ledger peak", "estimate (vs ledger)", "peak RSS"]
        if peer { header += ["PyTorch s/step", "PyTorch peak RSS"] }
        lines.append("| " + header.joined(separator: " | ") + " |")
        lines.append("|" + String(repeating: " --- |", count: header.count))
        for r in t.rows {
            var cells = [
                r.label, r.settings.filter { !$0.hasPrefix("method.name=") }.joined(separator: " "),
                String(format: "%.3f", r.medianSeconds),
                r.periodicSeconds.map { _ in String(format: "%.3f", r.amortizedSeconds) } ?? "",
                String(format: "%.0f", r.tokensPerSecond),
                reference.map { String(format: "%.2f×", r.amortizedSeconds / $0.amortizedSeconds) } ?? "",
                String(format: "%.0f%%", 100 * r.gemmSeconds / r.medianSeconds),
            ]
            cells += categories.map { c in
                gib(r.ledgerPeak[c] ?? 0)
                    + ((r.ledgerPeakBF16?[c] ?? 0) > 0 ? " (bf16 \(gib(r.ledgerPeakBF16?[c] ?? 0)))" : "")
            }
            cells += [
                gib(r.ledgerPeakTotal), String(format: "%@ (%+.1f%%)", gib(r.estimateTotal), 100 * r.estimateError),
                gib(r.peakRSS),
            ]
            if peer {
                cells += peerCells(r.pytorch)
            }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        if let budget = t.budget, !misses.isEmpty {
            lines += [
                "",
                """
                Not run: larger than \(gib(budget)) GiB at \(t.batch) × \(t.seq) by the estimate even at the smallest \
                plan.
                """,
                "",
            ]
            let header =
                ["method", "smallest plan", "estimate"] + (peer ? ["PyTorch s/step", "PyTorch peak RSS"] : [])
            lines.append("| " + header.joined(separator: " | ") + " |")
            lines.append("|" + String(repeating: " --- |", count: header.count))
            for m in misses {
                let plan = m.settings.filter { $0.hasPrefix("method.checkpointing=") || $0.hasPrefix("train.weights=") }
                    .joined(separator: " ")
                lines.append(
                    "| "
                        + ([m.label, plan, gib(m.estimateTotal)] + (peer ? peerCells(m.pytorch) : [])).joined(
                            separator: " | ") + " |")
            }
        }
        if peer {
            let ran = t.rows.map { ($0.label, $0.pytorch) } + misses.map { ($0.label, $0.pytorch) }
            lines += [
                "",
                "PyTorch ran: "
                    + ran.compactMap { label, p in p.map { "\(label): \($0.implementation)" } }.joined(separator: "; ")
                    + ".",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
