import Foundation
import TensorCore

/// OUTPUT/run.json: what a run was and how it went, written when it ends or stops: the method and steps, the memory
/// report of its (last) process, and its provenance. `experiments/runs.py` reads it beside metrics.jsonl.
public struct RunRecord: Codable, Sendable, Equatable {
    public struct Memory: Codable, Sendable, Equatable {
        /// Positions per sequence of the step measured, and the plan at that length.
        public var length: Int, plannedBytes: Int
        /// After the first step of the process: the ledger's peak and the process's peak RSS.
        public var ledgerPeakBytes: Int, residentPeakBytes: Int
    }

    public struct Provenance: Codable, Sendable, Equatable {
        /// ISO 8601, UTC.
        public var started: String, finished: String
        /// The CPU and the cores this process may use.
        public var machine: String
        /// The command line.
        public var arguments: [String]
    }

    public var format = 1
    public var method: String
    public var step: Int, totalSteps: Int
    /// finished, or stopped (with the checkpoint that continues it).
    public var outcome: String
    public var checkpoint: String?
    public var memory: Memory?
    public var provenance: Provenance

    /// The CPU's model name and the cores this process may use.
    public static var machine: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            info.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last?
            .trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// Writes the record to `path` through a temporary file.
    func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
