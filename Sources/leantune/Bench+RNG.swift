import ArgumentParser
import TensorCore

extension Bench {
    /// Throughput of the perturbation generator that zeroth-order methods regenerate in every pass.
    struct RNG: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Standard normals per second from Philox (the zeroth-order perturbation generator).")
        @Option(help: "Normals per run.")
        var count = 100_000_000
        @OptionGroup var options: KernelBenchOptions

        func run() throws {
            GEMM.setThreads(options.threads)
            let rng = Philox(seed: 1)
            var checksum: Float = 0
            let median = options.median {
                let grain = 1 << 16, sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: count / grain + 1)
                sums.initialize(repeating: 0)
                nonisolated(unsafe) let out = sums.baseAddress!  // one slot per chunk
                // sum the values so that nothing is optimised away
                Parallel.forEachChunk(count, grain: grain) { range in
                    var s: Float = 0
                    rng.withNormals(stream: 5, range: range) { r, z in s += Vector.sumOfSquares(z, r.count) }
                    out[range.lowerBound / grain] = s
                }
                checksum = sums.reduce(0, +)
                sums.deallocate()
            }
            print(
                String(
                    format: "%d normals on %d threads: median %.3f s, %.2f ns per normal, %.0f M/s (checksum %.1f)",
                    count, options.threads, median, median * 1e9 / Double(count), Double(count) / median / 1e6, checksum
                ))
        }
    }
}
