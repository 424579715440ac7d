// What executables settle first thing in `main`, before any kernel runs: environment variables
// that the libraries read only once, when they are loaded, so that setting them needs a fresh
// start of the program (one re-execution, only when something was set).
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The start-up environment of the executables (`gknet`, `gknet-bench`).
public enum StartupEnvironment {
    /// Sets what is missing of the variables below and, if it set any, re-executes the process
    /// (`/proc/self/exe`, same arguments; Linux only). Call first thing in `main`.
    ///
    /// - `OMP_WAIT_POLICY=passive`, unless it or `GOMP_SPINCOUNT` is set, when libgomp is loaded:
    ///   our loops run on Dispatch threads, OpenBLAS and oneDNN on libgomp's; by default an idle
    ///   libgomp thread spins for about 300,000 iterations after every parallel region, on a core
    ///   that our next loop wants (`perf`: 18 % of a 2-thread `paper` forward; passive waiting
    ///   halved its CPU time, docs/benchmarks.md, Model). `GOMP_SPINCOUNT=300000` measures libgomp's
    ///   own waiting.
    /// - `OPENBLAS_CORETYPE`, unless set, when OpenBLAS took its SSE-level fallback kernels on a
    ///   processor with AVX2 or AVX-512 (`OpenBLASCore.correctedCoreType`).
    public static func prepare() {
        #if os(Linux)
        let environment = ProcessInfo.processInfo.environment
        var changed = false
        if environment["OMP_WAIT_POLICY"] == nil, environment["GOMP_SPINCOUNT"] == nil,
            dlsym(UnsafeMutableRawPointer(bitPattern: 0), "GOMP_parallel") != nil
        {
            setenv("OMP_WAIT_POLICY", "passive", 1)
            changed = true
        }
        if environment["OPENBLAS_CORETYPE"] == nil, let core = OpenBLASCore.correctedCoreType() {
            setenv("OPENBLAS_CORETYPE", core, 1)
            changed = true
        }
        guard changed else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: exec failed; run on with the defaults.
        #endif
    }
}

/// Which kernels OpenBLAS runs. A DYNAMIC_ARCH OpenBLAS picks them at load time from the CPU's
/// family and model; a processor newer than the library (OpenBLAS 0.3.21 on an Intel family 6
/// model 207 Xeon, for one) falls back to `Prescott`, its SSE3 kernels: 4-5x slower GEMMs on a
/// processor with AVX-512 (docs/benchmarks.md "OpenBLAS's kernels on processors it does not know").
public enum OpenBLASCore {
    /// The core OpenBLAS chose (`openblas_get_corename`), nil when the BLAS is not OpenBLAS.
    public static var current: String? {
        #if os(Linux)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_get_corename") else { return nil }
        typealias CoreName = @convention(c) () -> UnsafePointer<CChar>?
        return unsafeBitCast(symbol, to: CoreName.self)().map { String(cString: $0) }
        #else
        return nil
        #endif
    }

    /// SSE-level cores OpenBLAS falls back to for a processor it does not know.
    static let fallbackCores: Set<String> = ["prescott", "core2", "penryn", "dunnington", "nehalem", "atom"]

    /// The core type for a processor with `flags` (from /proc/cpuinfo) when OpenBLAS chose a
    /// fallback core `chosen`: `SkylakeX` with AVX-512 (F, BW, VL, DQ), `Haswell` with AVX2 and FMA,
    /// else nil (keep OpenBLAS's choice; also for any core that is not a fallback, e.g. AMD's Zen).
    public static func correctedCoreType(chosen: String?, flags: Set<String>) -> String? {
        guard let chosen, fallbackCores.contains(chosen.lowercased()) else { return nil }
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq"]) { return "SkylakeX" }
        if flags.isSuperset(of: ["avx2", "fma"]) { return "Haswell" }
        return nil
    }

    /// `correctedCoreType(chosen:flags:)` for this process and processor.
    public static func correctedCoreType() -> String? {
        correctedCoreType(chosen: current, flags: processorFlags())
    }

    /// The first processor's flags in /proc/cpuinfo (empty when unreadable).
    static func processorFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return [] }
        for line in text.split(separator: "\n") where line.hasPrefix("flags") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
        }
        return []
    }
}
