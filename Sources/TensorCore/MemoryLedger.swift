import Synchronization

/// What a block of memory is for. Every large allocation is registered under one category so that
/// a run can say where its bytes went, and `estimate` can predict the same categories from shapes.
public enum MemoryCategory: String, CaseIterable, Sendable, Codable {
    case weights
    case gradients
    case optimizerState = "optimizer-state"
    case activations
    case workspace
    case host
}

/// Current and peak bytes per ``MemoryCategory``, plus the peak of their sum.
///
/// Thread-safe. Allocations register themselves through ``AlignedBuffer``; use ``shared`` for the
/// process, or a private ledger in tests that must not see other tests' allocations.
public final class MemoryLedger: Sendable {
    /// Bytes per category at one moment.
    public struct Snapshot: Sendable, Equatable {
        public var current: [MemoryCategory: Int]
        public var peak: [MemoryCategory: Int]
        /// Peak of the sum over categories (not the sum of per-category peaks).
        public var peakTotal: Int
        public var currentTotal: Int { current.values.reduce(0, +) }
    }

    private struct State {
        var current: [MemoryCategory: Int] = [:]
        var peak: [MemoryCategory: Int] = [:]
        var total = 0
        var peakTotal = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The ledger every buffer uses unless told otherwise.
    public static let shared = MemoryLedger()

    public func allocate(_ bytes: Int, _ category: MemoryCategory) {
        state.withLock { s in
            let now = s.current[category, default: 0] + bytes
            s.current[category] = now
            s.peak[category] = max(s.peak[category, default: 0], now)
            s.total += bytes
            s.peakTotal = max(s.peakTotal, s.total)
        }
    }

    public func free(_ bytes: Int, _ category: MemoryCategory) {
        state.withLock { s in
            s.current[category, default: 0] -= bytes
            s.total -= bytes
        }
    }

    /// Starts the peaks again from what is allocated now (e.g. to measure a training step apart from an
    /// evaluation that ran before it).
    public func resetPeak() {
        state.withLock { s in
            s.peak = s.current
            s.peakTotal = s.total
        }
    }

    public func snapshot() -> Snapshot {
        state.withLock { s in Snapshot(current: s.current, peak: s.peak, peakTotal: s.peakTotal) }
    }
}
