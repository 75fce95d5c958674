import Foundation
import Synchronization
import TensorCore

/// LSP-Offload's host side: a thread that owns the Adam moments of every compressed d×d gradient and turns each
/// gradient that arrives into a step Δ, in place. Gradients come in through one bounded queue and steps go back
/// through another (the two transfer directions); on a GPU machine the compute side would sit across PCIe.
///
/// The Adam is the system code's: M ← β₁M + (1 − β₁)Ĝ, V ← β₂V + (1 − β₂)Ĝ², Δ = −η·(M/(1 − β₁ᵗ)) / √(V/(1 − β₂ᵗ) + ε)
/// with ε inside the square root; t counts this matrix's steps.
final class HostWorker: @unchecked Sendable {
    struct Message {
        let matrix: Int
        /// Ĝ on the way in, Δ on the way out (the same buffer).
        let buffer: AlignedBuffer<Float>
        let learningRate: Float
    }

    let beta1: Float, beta2: Float, epsilon: Float
    /// M and V of each matrix (d×d each), and its step count; checkpointed.
    let m: [AlignedBuffer<Float>], v: [AlignedBuffer<Float>]
    let steps: AlignedBuffer<Int32>
    let toHost: BoundedQueue<Message?>, toCompute: BoundedQueue<Message>
    private let busy = Mutex(0.0)
    private var thread: Thread?

    init(matrices: Int, size d: Int, beta1: Float, beta2: Float, epsilon: Float, queueCapacity: Int, ledger: MemoryLedger) {
        (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        m = (0..<matrices).map { _ in AlignedBuffer(count: d * d, category: .host, ledger: ledger) }
        v = (0..<matrices).map { _ in AlignedBuffer(count: d * d, category: .host, ledger: ledger) }
        steps = AlignedBuffer(count: matrices, category: .host, ledger: ledger)
        toHost = BoundedQueue(capacity: queueCapacity)
        toCompute = BoundedQueue(capacity: queueCapacity)
    }

    /// Starts the thread (once).
    func start() {
        guard thread == nil else { return }
        let t = Thread { [self] in
            while let message = toHost.pop() {
                let start = monotonicNanoseconds()
                step(message)
                busy.withLock { $0 += Double(monotonicNanoseconds() - start) * 1e-9 }
                toCompute.push(message)
            }
        }
        t.name = "leantune-host"
        thread = t
        t.start()
    }

    /// Stops the thread after the messages already sent.
    func stop() {
        guard thread != nil else { return }
        toHost.push(nil)
        thread = nil
    }

    deinit { stop() }

    /// Seconds the host has spent on steps so far.
    var busySeconds: Double { busy.withLock { $0 } }

    /// Adam on one compressed gradient, leaving Δ in its buffer.
    func step(_ message: Message) {
        let i = message.matrix, t = Int(steps.pointer[i]) + 1
        steps.pointer[i] = Int32(t)
        let (b1, b2, eps, lr) = (beta1, beta2, epsilon, message.learningRate)
        let c1 = 1 / (1 - Float.pow(b1, t)), c2 = 1 / (1 - Float.pow(b2, t))
        let (g, mp, vp) = (message.buffer.pointer, m[i].pointer, v[i].pointer)
        for k in 0..<message.buffer.count {
            let mk = b1 * mp[k] + (1 - b1) * g[k], vk = b2 * vp[k] + (1 - b2) * g[k] * g[k]
            (mp[k], vp[k]) = (mk, vk)
            g[k] = -lr * (mk * c1) / (vk * c2 + eps).squareRoot()
        }
    }
}
