import Foundation
import Synchronization
import TensorCore

/// LSP-Offload's host side: a thread that owns the Adam moments of every compressed d×d gradient and turns each
/// gradient that arrives into a step Δ, in place. Gradients come in through one bounded queue and steps go back
/// through another (the two transfer directions); on a GPU machine the compute side would sit across PCIe.
///
/// The Adam is the system code's: M ← β₁M + (1 − β₁)Ĝ, V ← β₂V + (1 − β₂)Ĝ², Δ = −η·(M/(1 − β₁ᵗ)) / √(V/(1 − β₂ᵗ) + ε)
/// with ε inside the square root; t counts this matrix's steps. A Ĝ with a non-finite value leaves the moments and
/// the step count as they were and comes back marked not applied.
final class HostWorker: @unchecked Sendable {
    struct Message {
        let matrix: Int
        /// Ĝ on the way in, Δ on the way out (the same buffer).
        let buffer: AlignedBuffer<Float>
        let learningRate: Float
        /// Whether the host made a step of it (false: Ĝ was not finite; Δ is meaningless).
        var applied = false
    }

    let beta1: Float, beta2: Float, epsilon: Float
    /// M and V of each matrix (d×d each), and its step count; checkpointed.
    let m: [AlignedBuffer<Float>], v: [AlignedBuffer<Float>]
    let steps: AlignedBuffer<Int32>
    let toHost: BoundedQueue<Message>, toCompute: BoundedQueue<Message>
    /// Seconds the compute side waits for one answer before it gives up on the host.
    let timeout: Double
    private let busy = Mutex(0.0)
    private var thread: Thread?

    init(
        matrices: Int, size d: Int, beta1: Float, beta2: Float, epsilon: Float, queueCapacity: Int,
        timeout: Double = 60, ledger: MemoryLedger
    ) {
        (self.beta1, self.beta2, self.epsilon, self.timeout) = (beta1, beta2, epsilon, timeout)
        m = (0..<matrices).map { _ in AlignedBuffer(count: d * d, category: .host, ledger: ledger) }
        v = (0..<matrices).map { _ in AlignedBuffer(count: d * d, category: .host, ledger: ledger) }
        steps = AlignedBuffer(count: matrices, category: .host, ledger: ledger)
        toHost = BoundedQueue(capacity: queueCapacity)
        toCompute = BoundedQueue(capacity: queueCapacity)
    }

    /// Starts the thread (once). It runs until `stop`, then closes the way back.
    func start() {
        guard thread == nil else { return }
        let t = Thread { [self] in
            while var message = try? toHost.pop() {
                let start = monotonicNanoseconds()
                message.applied = step(message)
                busy.withLock { $0 += Double(monotonicNanoseconds() - start) * 1e-9 }
                guard (try? toCompute.push(message)) != nil else { break }
            }
            toCompute.close()
        }
        t.name = "leantune-host"
        thread = t
        t.start()
    }

    /// Stops the thread after the messages already sent; later sends and receives fail.
    func stop() {
        toHost.close()
        thread = nil
    }

    /// Hands Ĝ to the host.
    func send(_ message: Message) throws {
        do { try toHost.push(message) } catch {
            throw MethodError(
                message:
                    """
                    LSP-Offload's host worker has stopped: matrix \(message.matrix)'s gradient cannot be sent, and \
                    this step's update is lost. Resume from the last checkpoint.
                    """
            )
        }
    }

    /// The next Δ back from the host.
    func receive() throws -> Message {
        do { return try toCompute.pop(timeout: timeout) } catch {
            throw MethodError(
                message: error == .timedOut
                    ? """
                    LSP-Offload's host worker has not answered for \(timeout) s; the run stops rather than train on \
                    stale weights. Resume from the last checkpoint.
                    """
                    : """
                    LSP-Offload's host worker has stopped before answering; this step's update is lost. Resume from \
                    the last checkpoint.
                    """
            )
        }
    }

    deinit { stop() }

    /// Seconds the host has spent on steps so far.
    var busySeconds: Double { busy.withLock { $0 } }

    /// Adam on one compressed gradient, leaving Δ in its buffer; false (nothing changed) when Ĝ is not finite.
    func step(_ message: Message) -> Bool {
        guard message.buffer.buffer.allSatisfy(\.isFinite) else { return false }
        let i = message.matrix, t = Int(steps.pointer[i]) + 1
        steps.pointer[i] = Int32(t)
        let rule = AdamW.Rule(
            beta1: beta1, beta2: beta2, epsilon: epsilon, learningRate: message.learningRate, keep: 0, step: t,
            epsilonInsideRoot: true)
        let g = message.buffer.pointer
        rule.apply(g, g, m[i].pointer, v[i].pointer, 0..<message.buffer.count)  // Δ replaces Ĝ in its buffer
        return true
    }
}
