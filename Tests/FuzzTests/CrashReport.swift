#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// What the fuzzer is running, kept where a signal handler can print it: a trap (Swift's overflow, bounds and
/// unwrap checks end in SIGILL or SIGTRAP), a segfault or an abort inside a loader then names the target, the seed,
/// the iteration and the file that holds the input, before the process dies of the signal. A watchdog thread does
/// the same for an input that runs longer than the hang limit, and exits.
enum CrashReport {
    private static let capacity = 4096
    nonisolated(unsafe) private static let message = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
    private static let length = Atomic<Int>(0)
    /// Start of the current input in milliseconds (monotonic), 0 between inputs.
    private static let started = Atomic<Int>(0)
    private static let installed = Mutex(false)

    /// Installs the handlers and the watchdog once; an input running over `hangSeconds` ends the process.
    static func install(hangSeconds: Double) {
        installed.withLock { done in
            guard !done else { return }
            done = true
            for sig in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = { sig in
                    CrashReport.writeMessage(prefix: "\nFUZZ CRASH (signal \(sig)) in ")
                    signal(sig, SIG_DFL)
                    raise(sig)
                }
                sigaction(sig, &action, nil)
            }
            let thread = Thread {
                while true {
                    usleep(200_000)
                    let start = started.load(ordering: .relaxed)
                    if start > 0, Double(now() - start) / 1000 > hangSeconds {
                        writeMessage(prefix: "\nFUZZ HANG (over \(hangSeconds) s) in ")
                        _exit(3)
                    }
                }
            }
            thread.start()
        }
    }

    /// Marks the start of an input described by `description` (set before the loader runs).
    static func begin(_ description: String) {
        length.store(0, ordering: .sequentiallyConsistent)
        let bytes = Array(description.utf8.prefix(capacity))
        bytes.withUnsafeBufferPointer {
            UnsafeMutableRawPointer(message).copyMemory(from: $0.baseAddress!, byteCount: bytes.count)
        }
        length.store(bytes.count, ordering: .sequentiallyConsistent)
        started.store(now(), ordering: .sequentiallyConsistent)
    }

    /// Marks the end of the current input; returns its duration in seconds.
    @discardableResult
    static func end() -> Double {
        let start = started.exchange(0, ordering: .sequentiallyConsistent)
        return Double(now() - start) / 1000
    }

    private static func now() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1000 + t.tv_nsec / 1_000_000 + 1
    }

    /// Async-signal-safe enough for a dying process: two write(2) calls of prepared bytes (the prefix is built
    /// before the first write; a crash report does not need more).
    private static func writeMessage(prefix: String) {
        var p = Array(prefix.utf8)
        _ = write(2, &p, p.count)
        _ = write(2, message, length.load(ordering: .sequentiallyConsistent))
        var newline: UInt8 = 0x0A
        _ = write(2, &newline, 1)
    }
}
