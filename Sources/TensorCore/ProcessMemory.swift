#if canImport(Glibc)
import Glibc
#endif

/// What the operating system says about this process's memory.
public enum ProcessMemory {
    /// Peak resident set size in bytes (`getrusage` `ru_maxrss`, which Linux reports in KiB).
    public static var peakResidentBytes: Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }
}
