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
        /// The bf16 bytes among each category's ``peak`` (at the moment of that peak); the rest is fp32, INT8 or
        /// indices.
        public var peakBF16: [MemoryCategory: Int] = [:]
        public var currentTotal: Int { current.values.reduce(0, +) }
    }

    private struct State {
        var current: [MemoryCategory: Int] = [:]
        var peak: [MemoryCategory: Int] = [:]
        var currentBF16: [MemoryCategory: Int] = [:]
        var peakBF16: [MemoryCategory: Int] = [:]
        var total = 0
        var peakTotal = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The ledger every buffer uses unless told otherwise.
    public static let shared = MemoryLedger()

    /// Registers `bytes` under `category`; `bf16` when they hold bf16 values.
    public func allocate(_ bytes: Int, _ category: MemoryCategory, bf16: Bool = false) {
        state.withLock { s in
            let now = s.current[category, default: 0] + bytes
            s.current[category] = now
            if bf16 { s.currentBF16[category, default: 0] += bytes }
            if now > s.peak[category, default: 0] {
                (s.peak[category], s.peakBF16[category]) = (now, s.currentBF16[category] ?? 0)
            }
            s.total += bytes
            s.peakTotal = max(s.peakTotal, s.total)
        }
    }

    public func free(_ bytes: Int, _ category: MemoryCategory, bf16: Bool = false) {
        state.withLock { s in
            s.current[category, default: 0] -= bytes
            if bf16 { s.currentBF16[category, default: 0] -= bytes }
            s.total -= bytes
        }
    }

    /// Starts the peaks again from what is allocated now (e.g. to measure a training step apart from an
    /// evaluation that ran before it).
    public func resetPeak() {
        state.withLock { s in
            (s.peak, s.peakBF16) = (s.current, s.currentBF16)
            s.peakTotal = s.total
        }
    }

    public func snapshot() -> Snapshot {
        state.withLock { s in Snapshot(current: s.current, peak: s.peak, peakTotal: s.peakTotal, peakBF16: s.peakBF16) }
    }
}
