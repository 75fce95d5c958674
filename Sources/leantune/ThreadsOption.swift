import ArgumentParser
import TensorCore

/// The check every command's `--threads` shares: 1 up to ``GEMM/maxThreads``.
func validateThreads(_ threads: Int) throws {
    guard (1...GEMM.maxThreads).contains(threads) else {
        throw ValidationError("--threads must be in 1...\(GEMM.maxThreads), got \(threads)")
    }
}
