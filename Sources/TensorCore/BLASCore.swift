@preconcurrency import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// Keeps OpenBLAS off kernels older than the CPU it runs on.
///
/// A dynamic-architecture OpenBLAS picks its kernels by the CPU's model number. A release older than the CPU
/// does not know the number and falls back to the oldest x86-64 kernels (Prescott, SSE3): on a 5th-generation
/// Xeon seen here (family 6, model 207, AVX-512), Debian's OpenBLAS 0.3.21 ran sgemm at 65 GFLOP/s with them and
/// at 300 GFLOP/s with its SkylakeX kernels. When OpenBLAS fell back to kernels older than AVX2 on a CPU with
/// AVX2 or AVX-512, and the user has not set `OPENBLAS_CORETYPE`, this sets it and asks OpenBLAS to choose again,
/// before the first BLAS call of the process. A choice OpenBLAS made knowingly (e.g. Zen or Haswell kernels on a
/// CPU with AVX-512) stands.
public enum BLASCore {
    /// The widest vector instructions a kernel set uses, or a CPU offers.
    public enum Level: Int, Comparable, Sendable {
        case older, avx2, avx512
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    /// What was changed, for one `note:` line; nil when OpenBLAS's own choice stands. Evaluated once, by the
    /// first GEMM, SVD or thread-count call.
    public static let adjustment: String? = adjust(flags: CPUInfo.flags())

    /// The kernel set OpenBLAS is using now (e.g. `SkylakeX`).
    public static var current: String { String(cString: openblas_get_corename()) }

    /// The level of OpenBLAS's kernel set `core` (its names as `openblas_get_corename` gives them).
    public static func level(core: String) -> Level {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": .avx512
        case "haswell", "zen", "excavator": .avx2
        default: .older
        }
    }

    /// The level a CPU with these `/proc/cpuinfo` flags offers.
    public static func level(flags: Set<String>) -> Level {
        if ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"].allSatisfy(flags.contains) { return .avx512 }
        if flags.contains("avx2") && flags.contains("fma") { return .avx2 }
        return .older
    }

    /// The kernel set to ask for instead of `detected`, nil unless `detected` is a fallback older than AVX2 on a
    /// CPU that offers more.
    public static func replacement(detected: String, flags: Set<String>) -> String? {
        let offered = level(flags: flags)
        guard level(core: detected) == .older else { return nil }
        switch offered {
        case .avx512: return "SkylakeX"
        case .avx2: return "Haswell"
        case .older: return nil
        }
    }

    private static func adjust(flags: Set<String>) -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil else { return nil }
        let detected = current
        guard let core = replacement(detected: detected, flags: flags) else { return nil }
        typealias Entry = @convention(c) () -> Void
        // Exported by dynamic-architecture builds only; a build for one CPU has no choice to redo.
        guard let quit = dlsym(nil, "gotoblas_dynamic_quit"), let choose = dlsym(nil, "gotoblas_dynamic_init") else {
            return "OpenBLAS runs its \(detected) kernels on a CPU that offers \(core)'s; set OPENBLAS_CORETYPE=\(core)"
        }
        setenv("OPENBLAS_CORETYPE", core, 1)
        unsafeBitCast(quit, to: Entry.self)()
        unsafeBitCast(choose, to: Entry.self)()
        return "OpenBLAS took this CPU for \(detected); now running its \(current) kernels (OPENBLAS_CORETYPE=\(core))"
    }
}
