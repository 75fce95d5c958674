import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive claim on a run's output folder, so that two trainings never interleave their writes: an
/// advisory `flock` on `OUTPUT/leantune.lock`, which holds the holder's PID. The kernel drops the lock when the
/// process ends however it ends (even by SIGKILL), so a stale file never blocks the next run.
public final class OutputLock {
    public static let fileName = "leantune.lock"
    private let descriptor: Int32

    /// Takes the lock of `folder` (which must exist) or throws, naming the PID that holds it.
    public init(folder: String) throws {
        let path = folder + "/" + Self.fileName
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TrainingError(
                message:
                    """
                    \(path): cannot create the lock file (\(String(cString: strerror(errno)))); check the output \
                    location
                    """
            )
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw TrainingError(
                message:
                    """
                    \(folder) is in use by another training (PID \(holder.isEmpty ? "unknown" : holder)); wait for it \
                    to finish, or choose another logging.output
                    """
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, pid, pid.count, 0) == pid.count else {
            close(fd)
            throw TrainingError(
                message: "\(path): cannot write the lock file (\(String(cString: strerror(errno)))); check free space")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }  // releases the flock
}
