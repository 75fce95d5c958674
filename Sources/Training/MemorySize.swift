/// Sizes as people write them: "4GiB", "512MiB", "4G" (binary), "4GB", "500MB" (decimal), or bytes.
public enum MemorySize {
    public static func parse(_ text: String) throws -> Int {
        let units: [(suffix: String, factor: Double)] = [
            ("kib", 1024), ("mib", 0x1p20), ("gib", 0x1p30), ("tib", 0x1p40),
            ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12),
            ("k", 1024), ("m", 0x1p20), ("g", 0x1p30), ("t", 0x1p40), ("b", 1), ("", 1),
        ]
        let lower = text.lowercased().filter { $0 != " " }
        for (suffix, factor) in units where lower.hasSuffix(suffix) {
            if let value = Double(lower.dropLast(suffix.count)), value > 0, value * factor < 0x1p62 {
                return Int(value * factor)
            }
            break
        }
        throw TrainingError(
            message:
                "'\(text)' is not a memory size (below 4 EiB); write it like 4GiB, 512MiB, 4GB or a number of bytes")
    }
}
