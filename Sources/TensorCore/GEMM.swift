@preconcurrency import CBLAS
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Row-major single-precision matrix products over OpenBLAS, with transposes passed as flags.
///
/// Every call is counted (FLOPs and wall time) so a benchmark can say how much of a step is GEMM.
public enum GEMM {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, `op(A)` is m×k and `op(B)` is k×n.
    ///
    /// `lda`, `ldb`, `ldc` are the row strides of A, B and C as stored (A stored k×m when `transA`).
    /// Cost: 2·m·n·k FLOPs; no copies are made for the transposes.
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: UnsafePointer<Float>, lda: Int, transA: Bool = false,
        _ b: UnsafePointer<Float>, ldb: Int, transB: Bool = false,
        _ c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        _ = BLASCore.adjustment
        if k == 0 {
            // BLAS semantics: beta = 0 overwrites C (NaNs included).
            if beta != 1 {
                for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : c[i * ldc + j] * beta } }
            }
            return
        }
        timed(flops: 2 * m * n * k) {
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C. With a `workspace`: bf16 operands and fp32 accumulation, fp32
    /// operands rounded to bf16 (nearest even) into the workspace first. Without one: fp32 sgemm, and both
    /// operands must be fp32. Strides and transposes as in
    /// ``multiply(m:n:k:_:lda:transA:_:ldb:transB:_:ldc:alpha:beta:)``.
    public static func multiply(
        m: Int, n: Int, k: Int,
        _ a: GEMMOperand, lda: Int, transA: Bool = false,
        _ b: GEMMOperand, ldb: Int, transB: Bool = false,
        _ c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0, workspace: BF16Workspace?
    ) {
        guard let workspace else {
            guard case .f32(let pa) = a, case .f32(let pb) = b else {
                preconditionFailure("GEMM: bf16 operands need a BF16Workspace")
            }
            multiply(
                m: m, n: n, k: k, pa, lda: lda, transA: transA, pb, ldb: ldb, transB: transB, c, ldc: ldc, alpha: alpha,
                beta: beta)
            return
        }
        guard m > 0, n > 0, k > 0 else {  // nothing to multiply: the fp32 call only applies beta (it reads no operand)
            multiply(m: m, n: n, k: k, UnsafePointer(c), lda: 1, c, ldb: 1, c, ldc: ldc, alpha: alpha, beta: beta)
            return
        }
        let pa = workspace.bits(of: a, slot: .a, rows: transA ? k : m, columns: transA ? m : k, stride: lda)
        let pb = workspace.bits(of: b, slot: .b, rows: transB ? n : k, columns: transB ? k : n, stride: ldb)
        workspace.kernel.run(
            m: m, n: n, k: k, pa, lda: lda, transA: transA, pb, ldb: ldb, transB: transB, c, ldc: ldc,
            alpha: alpha, beta: beta, widened: workspace.widened)
    }

    /// Runs `body`, counting its FLOPs and wall time as GEMM work.
    static func timed(flops: Int, _ body: () -> Void) {
        let start = monotonicNanoseconds()
        body()
        // Inside a parallel region the region's wall time is counted once, not each task's.
        let elapsed = counters.parallelRegion.load(ordering: .relaxed) ? 0 : monotonicNanoseconds() - start
        counters.record(flops: flops, nanoseconds: elapsed)
    }

    /// Sets the number of OpenBLAS threads (and ``Parallel/threadCount`` with it).
    public static func setThreads(_ requested: Int) {
        _ = BLASCore.adjustment
        _ = quietIdleWorkers
        let n = min(max(1, requested), maxThreads)
        openblas_set_num_threads(Int32(n))
        Parallel.threadCount = n
    }

    /// The most threads `setThreads` uses (callers refuse more; it clamps).
    public static let maxThreads = 1024

    /// OpenBLAS's idle workers spin for 2²⁸ cycles (≈ 0.1 s) after every threaded call, taking a
    /// core from the Dispatch tasks that run our kernels and the per-head attention GEMMs in
    /// between (measured: attention 0.21 → 0.12 s and a SmolLM2 forward + backward 5.9 → 5.3 s with
    /// the shorter timeout). Unless the user set `OPENBLAS_THREAD_TIMEOUT`, use 2⁴ cycles: re-read
    /// the environment and stop the workers, which restart with the new timeout on the next threaded
    /// call. The two entry points are looked up at run time; a build without them keeps its default.
    private static let quietIdleWorkers: Void = {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        typealias Entry = @convention(c) () -> Void
        guard let readEnvironment = dlsym(nil, "openblas_read_env"),
            let stopWorkers = dlsym(nil, "blas_thread_shutdown_")
        else { return }
        unsafeBitCast(readEnvironment, to: Entry.self)()
        unsafeBitCast(stopWorkers, to: Entry.self)()
    }()

    /// Runs `body` with OpenBLAS on one thread, for GEMMs issued from several ``Parallel`` tasks at
    /// once (OpenBLAS must not start its own threads inside a Dispatch task), then restores
    /// ``Parallel/threadCount`` BLAS threads.
    /// The region's wall time counts as GEMM time (its other work is small next to its GEMMs).
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        openblas_set_num_threads(1)
        counters.parallelRegion.store(true, ordering: .relaxed)
        let start = monotonicNanoseconds()
        defer {
            counters.parallelRegion.store(false, ordering: .relaxed)
            counters.record(flops: 0, nanoseconds: monotonicNanoseconds() - start)
            openblas_set_num_threads(Int32(Parallel.threadCount))
        }
        return try body()
    }

    /// Whether GEMMs are being issued from several tasks at once (inside ``withSingleThreadedBLAS(_:)``).
    static var inParallelRegion: Bool { counters.parallelRegion.load(ordering: .relaxed) }

    /// FLOPs and time spent in GEMM since the last ``resetCounters()``.
    public static var statistics: (flops: Int, seconds: Double) {
        (counters.flops.load(ordering: .relaxed), Double(counters.nanos.load(ordering: .relaxed)) * 1e-9)
    }

    public static func resetCounters() {
        counters.flops.store(0, ordering: .relaxed)
        counters.nanos.store(0, ordering: .relaxed)
    }

    private final class Counters: Sendable {
        let flops = Atomic<Int>(0)
        let nanos = Atomic<Int>(0)
        let parallelRegion = Atomic<Bool>(false)
        func record(flops f: Int, nanoseconds t: Int) {
            flops.add(f, ordering: .relaxed)
            nanos.add(t, ordering: .relaxed)
        }
    }
    private static let counters = Counters()
}

/// Monotonic clock in nanoseconds.
public func monotonicNanoseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
