import Foundation
import Llama

/// What `leantune bench methods` measured, one row per method, as written to its JSON file; also the
/// calibration `leantune estimate --budget` ranks methods with.
public struct MethodBenchmarkTable: Codable, Sendable {
    public var shape: String
    public var batch: Int
    public var seq: Int
    public var threads: Int
    public var repetitions: Int
    /// The CPU model and core count, and the date of the run (ISO 8601).
    public var machine: String
    public var date: String
    public var rows: [Row]
    /// With a budget (`bench methods --budget`): its bytes, and the methods that do not fit it at this batch, not run.
    public var budget: Int?
    public var misses: [Miss]?

    /// A method the budget planner found too large for the budget at the table's batch: not run.
    public struct Miss: Codable, Sendable {
        public var label: String
        public var settings: [String]
        /// The plan's bytes at its smallest choice (checkpointing on, the smallest weight store), runtime included.
        public var estimateTotal: Int
        public var pytorch: Peer?
        public init(label: String, settings: [String], estimateTotal: Int) {
            (self.label, self.settings, self.estimateTotal) = (label, settings, estimateTotal)
        }
    }

    public struct Row: Codable, Sendable {
        public var label: String
        public var settings: [String]
        /// Seconds of each timed step (after one warm-up step).
        public var stepSeconds: [Double]
        public var medianSeconds: Double
        /// Tokens per second of a run: batch × length over the step with its periodic work.
        public var tokensPerSecond: Double
        /// Median seconds in GEMM per step, and GEMM's floating-point operations per step.
        public var gemmSeconds: Double
        public var gemmFlops: Int
        /// The memory ledger's peak per category during the timed steps, and the peak of the total.
        public var ledgerPeak: [String: Int]
        public var ledgerPeakTotal: Int
        /// The bf16 bytes among each category's peak (absent in tables written before it was measured).
        public var ledgerPeakBF16: [String: Int]?
        /// `leantune estimate`'s plan per category, and its total.
        public var estimate: [String: Int]
        public var estimateTotal: Int
        /// The process's peak resident set size while this method was set up and run.
        public var peakRSS: Int
        /// Medians of what the method reports about its steps (host time, refreshes, …).
        public var details: [String: Double]
        /// Seconds per step of work the method does every so many steps, which the timed steps do not contain
        /// (DiZO's projection round over κ, GaLore's subspace refresh over its interval); nil where there is none
        /// or its interval is not fixed.
        public var periodicSeconds: Double?
        /// The same step in PyTorch (`scripts/peer_bench.py`), where it has one.
        public var pytorch: Peer?

        public init(
            label: String, settings: [String], stepSeconds: [Double], medianSeconds: Double, tokensPerSecond: Double,
            gemmSeconds: Double, gemmFlops: Int, ledgerPeak: [String: Int], ledgerPeakTotal: Int,
            estimate: [String: Int],
            estimateTotal: Int, peakRSS: Int, details: [String: Double], periodicSeconds: Double? = nil,
            pytorch: Peer? = nil,
            ledgerPeakBF16: [String: Int]? = nil
        ) {
            (self.label, self.settings, self.stepSeconds, self.medianSeconds, self.tokensPerSecond) = (
                label, settings, stepSeconds, medianSeconds, tokensPerSecond
            )
            (self.gemmSeconds, self.gemmFlops, self.ledgerPeak, self.ledgerPeakTotal) = (
                gemmSeconds, gemmFlops, ledgerPeak, ledgerPeakTotal
            )
            (self.estimate, self.estimateTotal, self.peakRSS, self.details, self.pytorch) = (
                estimate, estimateTotal, peakRSS, details, pytorch
            )
            (self.periodicSeconds, self.ledgerPeakBF16) = (periodicSeconds, ledgerPeakBF16)
        }

        /// What a step costs over a run: the median step plus the periodic work per step.
        public var amortizedSeconds: Double { medianSeconds + (periodicSeconds ?? 0) }

        /// (plan − ledger peak) / ledger peak.
        public var estimateError: Double { Double(estimateTotal - ledgerPeakTotal) / Double(ledgerPeakTotal) }
    }

    public struct Peer: Codable, Sendable {
        /// nil where PyTorch was not run because it would not fit (``outOfMemory``).
        public var medianSeconds: Double?
        public var peakRSS: Int?
        /// What PyTorch ran for this method (the package and its settings), or why it did not.
        public var implementation: String
        /// The peer script's estimate of PyTorch's bytes where it exceeds the machine's available memory.
        public var outOfMemory: Int?
    }

    public init(
        shape: String, batch: Int, seq: Int, threads: Int, repetitions: Int, machine: String, date: String, rows: [Row]
    ) {
        (self.shape, self.batch, self.seq, self.threads, self.repetitions) = (shape, batch, seq, threads, repetitions)
        (self.machine, self.date, self.rows) = (machine, date, rows)
    }

    /// Reads a table written by `leantune bench methods`.
    public static func load(_ path: String) throws -> MethodBenchmarkTable {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError(
                message:
                    """
                    \(path): cannot read the benchmark table; write one with `leantune bench methods --output \
                    \(path.hasSuffix(".json") ? String(path.dropLast(5)) : path)`
                    """
            )
        }
        do { return try JSONDecoder().decode(MethodBenchmarkTable.self, from: data) } catch {
            throw TrainingError(message: "\(path): not a `leantune bench methods` table (\(error))")
        }
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
