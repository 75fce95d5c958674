import Foundation
import Training
import TensorCore
#if canImport(Glibc)
import Glibc
#endif

/// What `train` writes as it goes: metrics.jsonl (one line per step and per evaluation), metrics.csv at
/// the end, samples.jsonl, and a progress line with loss, learning rate, tokens/s, ETA and peak memory.
final class TrainingLog {
    static let columns = [
        "step", "loss", "lr", "grad_norm", "tokens", "seconds", "skipped", "eval_loss", "eval_accuracy",
    ]
    let output: String
    let totalSteps: Int
    private let metrics: FileHandle
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var seconds: [Double] = []

    /// Opens OUTPUT/metrics.jsonl keeping the lines of steps ≤ `step` (a resumed run redoes the rest).
    init(output: String, totalSteps: Int, resumedAt step: Int) throws {
        self.output = output
        self.totalSteps = totalSteps
        let path = output + "/metrics.jsonl"
        let kept = (FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(separator: "\n").filter { line in (Self.object(line)?["step"] as? Int).map { $0 <= step } ?? false }
        try Data(kept.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        metrics = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try metrics.seekToEnd()
    }

    static func object(_ line: Substring) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    /// Appends one metrics line (nil values are written as null): the known columns, then a method's own keys.
    func record(_ values: [String: Any?]) throws {
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

    /// The progress line of a finished step: rewritten in place on a terminal, every tenth of the run otherwise.
    func progress(_ r: StepReport) {
        seconds.append(r.seconds)
        let recent = seconds.suffix(20), perStep = recent.reduce(0, +) / Double(recent.count)
        let eta = Int((Double(totalSteps - r.step) * perStep).rounded())
        let width = 20, done = width * r.step / max(1, totalSteps)
        let bar = String(repeating: "#", count: done) + String(repeating: ".", count: width - done)
        let line = String(
            format: "step %4d/%d [%@] loss %.4f  lr %.2e  %.0f tok/s  ETA %d:%02d  peak RSS %@%@",
            r.step, totalSteps, bar, r.loss, r.learningRate, Double(r.tokens) / r.seconds, eta / 60, eta % 60,
            PassBenchmark.format(bytes: ProcessMemory.peakResidentBytes), r.skipped ? "  (skipped: non-finite)" : "")
        if interactive {
            print("\r" + line, terminator: r.step == totalSteps ? "\n" : "")
        } else if r.step == 1 || r.step % max(1, totalSteps / 10) == 0 || r.step == totalSteps {
            print(line)
        }
        fflush(nil)  // a log file sees each line as it happens
    }

    /// A line of its own (an evaluation, a sample) that does not overwrite the progress line.
    func note(_ text: String) {
        print((interactive ? "\r\u{1B}[K" : "") + text)
        fflush(nil)
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

    /// Closes metrics.jsonl and writes metrics.csv with the same rows (empty cells for nulls).
    func finish() throws {
        try metrics.close()
        var text = Self.columns.joined(separator: ",") + "\n"
        for line in String(
            decoding: FileManager.default.contents(atPath: output + "/metrics.jsonl") ?? Data(), as: UTF8.self
        ).split(separator: "\n") {
            guard let object = Self.object(line) else { continue }
            text +=
                Self.columns.map { key in object[key].map { $0 is NSNull ? "" : "\($0)" } ?? "" }.joined(separator: ",")
                + "\n"
        }
        try Data(text.utf8).write(to: URL(fileURLWithPath: output + "/metrics.csv"), options: .atomic)
    }
}
