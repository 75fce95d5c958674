import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore

extension Bench {
    struct AttentionPass: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attention", abstract: "Attention forward + backward of one layer (all heads of the batch).")
        @OptionGroup var options: PassOptions

        func run() throws {
            GEMM.setThreads(options.threads)
            let (kernel, note) = options.precision.kernel
            if let note { print("note: \(note)") }
            let c = options.config, n = options.batch * options.seq
            let s = AttentionShape(
                batch: options.batch, queries: options.seq, keys: options.seq, heads: c.headCount,
                kvHeads: c.kvHeadCount, headDim: c.headDim, queryOffset: 0)
            let rng = Philox(seed: 4)
            func random(_ count: Int, _ stream: UInt64) -> AlignedBuffer<Float> {
                let b = AlignedBuffer<Float>(count: count, category: .workspace)
                rng.fillNormal(b.buffer, stream: stream)
                return b
            }
            let q = random(n * c.dim, 0), k = random(n * c.kvDim, 1), v = random(n * c.kvDim, 2),
                dOut = random(n * c.dim, 3)
            let out = random(n * c.dim, 4), dq = random(n * c.dim, 5), dk = random(n * c.kvDim, 6),
                dv = random(n * c.kvDim, 7)
            let lse = random(options.batch * c.headCount * options.seq, 8)
            var forward: [Double] = [], backward: [Double] = []
            for _ in 0..<(options.repetitions * 10 + 1) {
                let t0 = monotonicNanoseconds()
                Attention.forward(
                    q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer, s, bf16: kernel)
                let t1 = monotonicNanoseconds()
                Attention.backward(
                    dOut: dOut.pointer, q: q.pointer, k: k.pointer, v: v.pointer, lse: lse.pointer,
                    dq: dq.pointer, dk: dk.pointer, dv: dv.pointer, s, bf16: kernel)
                forward.append(Double(t1 - t0) * 1e-6)
                backward.append(Double(monotonicNanoseconds() - t1) * 1e-6)
            }
            forward.removeFirst()
            backward.removeFirst()
            print(
                String(
                    format:
                        """
                        attention of one layer (%@, batch %d × %d, %@): forward median %.2f ms (min %.2f), backward \
                        median %.2f ms (min %.2f); × %d layers = %.3f s per step
                        """,
                    options.shape, options.batch, options.seq, kernel == nil ? "fp32" : "bf16",
                    forward.sorted()[forward.count / 2], forward.min()!,
                    backward.sorted()[backward.count / 2], backward.min()!, c.layerCount,
                    Double(c.layerCount) * (forward.sorted()[forward.count / 2] + backward.sorted()[backward.count / 2])
                        / 1000))
        }
    }
}
