import Foundation

/// The files a run's events are recorded in: OUTPUT/metrics.jsonl (one line per step and per evaluation),
/// samples.jsonl, and at the end metrics.csv with the same rows and run.json (``RunRecord``).
public final class MetricsLog {
    /// metrics.csv's columns; metrics.jsonl lines hold these first, then a method's own keys.
    public static let columns = [
        "step", "loss", "lr", "grad_norm", "tokens", "seconds", "skipped", "eval_loss", "eval_accuracy",
    ]
    public let output: String
    private let metrics: FileHandle
    private let started = RunRecord.now()
    private var memory: RunRecord.Memory?

    /// Opens OUTPUT/metrics.jsonl, keeping in it and in samples.jsonl the lines of steps ≤ `step` (a resumed run
    /// redoes the rest).
    public init(output: String, resumedAt step: Int) throws {
        self.output = output
        for name in ["metrics.jsonl", "samples.jsonl"] {
            let path = output + "/" + name
            guard FileManager.default.fileExists(atPath: path) || name == "metrics.jsonl" else { continue }
            let kept = Self.lines(path).filter { (Self.object($0)?["step"] as? Int).map { $0 <= step } ?? false }
            try Data(kept.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: output + "/metrics.jsonl"))
        try metrics.seekToEnd()
    }

    static func lines(_ path: String) -> [Substring] {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self).split(separator: "\n")
    }

    static func object(_ line: Substring) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    /// Writes what `event` adds to the files.
    public func record(_ event: TrainingEvent) throws {
        switch event {
        case .step(let r):
            try append(
                [
                    "step": r.step, "loss": r.loss, "lr": r.learningRate, "grad_norm": r.gradientNorm,
                    "tokens": r.tokens, "seconds": r.seconds, "skipped": r.skipped,
                ].merging(r.details.mapValues { $0 as Any? }) { a, _ in a })
        case .evaluation(let e):
            try append([
                "step": e.step, "eval_loss": e.loss ?? e.classification?.loss.mean,
                "eval_accuracy": e.classification?.accuracy,
            ])
        case .sample(let step, let prompt, let completion):
            try sample(step: step, prompt: prompt, completion: completion)
        case .memory(let m):
            memory = RunRecord.Memory(
                length: m.length, plannedBytes: m.plannedBytes, ledgerPeakBytes: m.ledgerPeakBytes,
                residentPeakBytes: m.residentPeakBytes)
        case .checkpoint:
            break
        }
    }

    /// Appends one metrics line (nil values are written as null): the known columns, then a method's own keys.
    func append(_ values: [String: Any?]) throws {
        let keys = Self.columns + values.keys.filter { !Self.columns.contains($0) }.sorted()
        let fields = keys.compactMap { key -> String? in
            guard let entry = values[key] else { return nil }
            let text: String =
                switch entry {
                case nil: "null"
                case let d as Double: d.isFinite ? String(format: "%.6g", d) : "null"
                case let b as Bool: b ? "true" : "false"
                case let some?: "\(some)"
                }
            return "\"\(key)\":\(text)"
        }
        try metrics.write(contentsOf: Data(("{" + fields.joined(separator: ",") + "}\n").utf8))
    }

    /// Appends a generated sample to OUTPUT/samples.jsonl.
    func sample(step: Int, prompt: String, completion: String) throws {
        let path = output + "/samples.jsonl"
        if !FileManager.default.fileExists(atPath: path), !FileManager.default.createFile(atPath: path, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        let line = try JSONSerialization.data(
            withJSONObject: ["step": step, "prompt": prompt, "completion": completion], options: [.sortedKeys])
        try handle.write(contentsOf: line + Data("\n".utf8))
        try handle.close()
    }

    /// Closes metrics.jsonl, writes metrics.csv with the same rows (empty cells for nulls) and run.json for `trainer`'s
    /// run ending in `outcome`.
    public func finish(_ trainer: Trainer, outcome: TrainingOutcome) throws {
        try finish()
        var checkpoint: String?
        if case .stopped(_, let path) = outcome { checkpoint = path }
        let record = RunRecord(
            method: trainer.options.method.rawValue, step: trainer.step, totalSteps: trainer.options.schedule.total,
            outcome: checkpoint == nil ? "finished" : "stopped", checkpoint: checkpoint, memory: memory,
            provenance: RunRecord.Provenance(
                started: started, finished: RunRecord.now(), machine: RunRecord.machine,
                arguments: CommandLine.arguments))
        try record.write(to: output + "/run.json")
    }

    /// Closes metrics.jsonl and writes metrics.csv with the same rows (empty cells for nulls).
    func finish() throws {
        try metrics.close()
        var text = Self.columns.joined(separator: ",") + "\n"
        for line in Self.lines(output + "/metrics.jsonl") {
            guard let object = Self.object(line) else { continue }
            text +=
                Self.columns.map { key in object[key].map { $0 is NSNull ? "" : "\($0)" } ?? "" }.joined(separator: ",")
                + "\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: output + "/metrics.csv"), options: .atomic)
    }
}
