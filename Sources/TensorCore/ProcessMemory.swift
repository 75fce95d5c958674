import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// What the operating system says about this process's memory.
public enum ProcessMemory {
    /// Peak resident set size in bytes since the process started or the last ``resetPeak()``: the kernel's
    /// `VmHWM` (`/proc/self/status`), or `getrusage`'s `ru_maxrss` (KiB, never reset) where that is missing.
    public static var peakResidentBytes: Int {
        if let kib = statusField("VmHWM:") { return kib * 1024 }
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }

    /// The machine's physical memory in bytes.
    public static var physicalBytes: Int { Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// The number on the line of `/proc/self/status` that starts with `key` (a size in KiB there).
    static func statusField(_ key: String) -> Int? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>? = nil, capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix(key) else { continue }
            return Int(text.dropFirst(key.count).split(separator: " ", omittingEmptySubsequences: true).first ?? "")
        }
        return nil
    }

    /// Starts a new peak: freed heap pages go back to the system (`malloc_trim`), then the kernel's high-water
    /// mark falls to the current resident size (`/proc/self/clear_refs` ← 5, Linux ≥ 4.0). Returns false where
    /// that is not possible.
    @discardableResult
    public static func resetPeak() -> Bool {
        malloc_trim(0)
        guard let file = fopen("/proc/self/clear_refs", "w") else { return false }
        defer { fclose(file) }
        return fputs("5", file) >= 0 && fflush(file) == 0
    }
}
