import Dispatch
import Synchronization

/// Data-parallel loops over `DispatchQueue.concurrentPerform`, with one process-wide thread budget.
///
/// Kernels split an index range into contiguous chunks, one per task; each task writes only its own
/// chunk, which is what makes passing raw pointers into the `@Sendable` closure safe.
public enum Parallel {
    private static let threads = Atomic<Int>(2)

    /// Tasks a parallel loop uses (and, through ``GEMM/setThreads(_:)``, BLAS threads).
    public static var threadCount: Int {
        get { threads.load(ordering: .relaxed) }
        set { threads.store(max(1, newValue), ordering: .relaxed) }
    }

    /// Calls `body` on disjoint chunks covering `0..<count`, in parallel when there is enough work.
    /// - Parameter grain: the smallest chunk worth a task of its own.
    @inlinable
    public static func forEachChunk(_ count: Int, grain: Int = 4096, _ body: (Range<Int>) -> Void) {
        let tasks = min(threadCount, (count + grain - 1) / max(grain, 1))
        if tasks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let body = body  // chunks are disjoint; see the type's comment
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                let lo = count * t / tasks
                let hi = count * (t + 1) / tasks
                if lo < hi { body(lo..<hi) }
            }
        }
    }
}
