import ArgumentParser
import TensorCore

/// Options of the kernel benchmarks (no model pass): threads and repetitions, and their timing loop.
struct KernelBenchOptions: ParsableArguments {
    @Option(help: "Threads.")
    var threads = 2
    @Option(help: "Timed repetitions (after one warm-up).")
    var repetitions = 5

    func validate() throws {
        try validateThreads(threads)
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    /// Median seconds of `body` over the repetitions, after one warm-up run.
    func median(_ body: () -> Void) -> Double {
        body()
        let times = (0..<repetitions).map { _ in
            let start = monotonicNanoseconds()
            body()
            return Double(monotonicNanoseconds() - start) * 1e-9
        }
        return times.sorted()[times.count / 2]
    }
}
