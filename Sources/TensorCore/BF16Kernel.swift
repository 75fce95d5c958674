import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The number format GEMMs compute in: fp32 operands, or bf16 operands with fp32 accumulation.
public enum Precision: String, Sendable, Codable, CaseIterable {
    case fp32, bf16

    /// The kernel that computes in this precision here: nil for fp32, and for bf16 where no fast kernel is
    /// detected, with a one-line `note` that says so and that the run computes in fp32.
    public var kernel: (kernel: BF16Kernel?, note: String?) {
        guard self == .bf16 else { return (nil, nil) }
        switch BF16Kernel.detected {
        case .success(let k): return (k, nil)
        case .failure(let why):
            return (nil, "bf16 compute is not available (\(why.reason)): GEMMs run in fp32; bf16 weights stay bf16")
        }
    }
}

/// What computes a bf16 × bf16 → fp32 matrix product.
///
/// oneDNN's `dnnl_gemm_bf16bf16f32` (Debian `libdnnl-dev` 2.6) runs at ≈ 2× OpenBLAS sgemm on a CPU with
/// AVX512-BF16. The library is opened at run time (`dlopen`), so the binary runs without it: where it is missing,
/// or the CPU lacks AVX512-BF16, ``detected`` says why and training computes in fp32 instead.
/// ``emulated`` widens the bf16 operands to fp32 and calls sgemm: the same products with fp32 accumulation,
/// on any CPU, so the bf16 code path can be tested everywhere.
public enum BF16Kernel: Sendable {
    /// `dnnl_gemm_bf16bf16f32(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)`, row-major,
    /// bf16 passed as `uint16_t`; exported by oneDNN 2.6 but not declared in its headers.
    public typealias Entry =
        @convention(c) (
            CChar, CChar, Int64, Int64, Int64, Float, UnsafePointer<UInt16>, Int64, UnsafePointer<UInt16>, Int64,
            Float, UnsafeMutablePointer<Float>, Int64
        ) -> Int32

    case oneDNN(Entry)
    case emulated

    /// The environment variable that turns the oneDNN kernel off (`off`, `0` or `false`: the fallback, on any CPU),
    /// or asks for ``emulated`` (`emulate`: bf16 compute's numbers on any CPU, at fp32 speed or below, for studying
    /// them where no AVX512-BF16 is).
    public static let environmentSwitch = "LEANTUNE_BF16_GEMM"

    /// The kernel this process can use, or why there is none (checked once).
    public static let detected: Result<BF16Kernel, Unavailable> = detect(
        environment: ProcessInfo.processInfo.environment, cpuFlags: CPUInfo.flags())

    /// Why the fast kernel cannot run here.
    public struct Unavailable: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// The oneDNN kernel when `environment` allows it, the CPU has AVX512-BF16 and the library loads.
    public static func detect(environment: [String: String], cpuFlags: Set<String>) -> Result<BF16Kernel, Unavailable> {
        if let value = environment[environmentSwitch]?.lowercased(), ["off", "0", "false", "no"].contains(value) {
            return .failure(Unavailable(reason: "the bf16 GEMM is switched off by \(environmentSwitch)=\(value)"))
        }
        if environment[environmentSwitch]?.lowercased() == "emulate" { return .success(.emulated) }
        guard cpuFlags.contains("avx512_bf16") else {
            return .failure(Unavailable(reason: "this CPU has no AVX512-BF16"))
        }
        guard let entry = OneDNN.gemm else {
            return .failure(Unavailable(reason: "oneDNN (libdnnl.so.2) is not installed: apt-get install libdnnl-dev"))
        }
        return .success(.oneDNN(entry))
    }

    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, A and B bf16 bits (A stored k×m when `transA`).
    func run(
        m: Int, n: Int, k: Int, _ a: UnsafePointer<UInt16>, lda: Int, transA: Bool,
        _ b: UnsafePointer<UInt16>, ldb: Int, transB: Bool, _ c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float, beta: Float, widened: (Int, Int) -> UnsafeMutablePointer<Float>
    ) {
        switch self {
        case .oneDNN(let gemm):
            OneDNN.setThreads(GEMM.inParallelRegion ? 1 : Parallel.threadCount)
            var status: Int32 = 0
            GEMM.timed(flops: 2 * m * n * k) {
                status = gemm(
                    CChar(UInt8(ascii: transA ? "T" : "N")), CChar(UInt8(ascii: transB ? "T" : "N")),
                    Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda), b, Int64(ldb), beta, c, Int64(ldc))
            }
            precondition(status == 0, "dnnl_gemm_bf16bf16f32 failed with status \(status) for \(m)×\(n)×\(k)")
        case .emulated:
            let countA = storedCount(rows: transA ? k : m, columns: transA ? m : k, stride: lda)
            let countB = storedCount(rows: transB ? n : k, columns: transB ? k : n, stride: ldb)
            let wa = widened(0, countA), wb = widened(1, countB)
            Conversions.fromBF16(a, wa, count: countA)
            Conversions.fromBF16(b, wb, count: countB)
            GEMM.multiply(
                m: m, n: n, k: k, wa, lda: lda, transA: transA, wb, ldb: ldb, transB: transB, c, ldc: ldc,
                alpha: alpha, beta: beta)
        }
    }
}

/// Elements from the first to the last of a row-major matrix stored with row stride `stride`.
func storedCount(rows: Int, columns: Int, stride: Int) -> Int { (rows - 1) * stride + columns }

/// oneDNN opened at run time.
enum OneDNN {
    /// The bf16 GEMM entry point, nil where the library or the symbol is missing.
    static let gemm: BF16Kernel.Entry? = {
        // OpenMP workers that spin after each call would take a core from the Dispatch kernels that run
        // between GEMMs (as OpenBLAS's did; see GEMM.quietIdleWorkers): let them sleep unless the user chose.
        if getenv("OMP_WAIT_POLICY") == nil { setenv("OMP_WAIT_POLICY", "PASSIVE", 1) }
        guard
            let handle = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_GLOBAL) ?? dlopen("libdnnl.so", RTLD_NOW | RTLD_GLOBAL),
            let symbol = dlsym(handle, "dnnl_gemm_bf16bf16f32")
        else { return nil }
        if let set = dlsym(handle, "omp_set_num_threads") ?? dlsym(nil, "omp_set_num_threads") {
            setNumThreads = unsafeBitCast(set, to: (@convention(c) (Int32) -> Void).self)
        }
        return unsafeBitCast(symbol, to: BF16Kernel.Entry.self)
    }()

    nonisolated(unsafe) private static var setNumThreads: (@convention(c) (Int32) -> Void)?

    /// Sets the calling thread's OpenMP thread count before a GEMM: OpenMP keeps it per thread, so tasks that run
    /// GEMMs side by side ask for one while the caller of a whole-machine GEMM asks for ``Parallel/threadCount``.
    static func setThreads(_ n: Int) { setNumThreads?(Int32(n)) }
}
