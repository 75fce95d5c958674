import Foundation

/// What this process can read about its CPU.
public enum CPUInfo {
    /// The flags of the first CPU in `/proc/cpuinfo` (empty where there is no such file).
    public static func flags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
            let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }
}
