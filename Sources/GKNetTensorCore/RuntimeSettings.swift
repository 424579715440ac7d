// Runtime settings: every GKNET_* environment variable the programs read, parsed in this one place
// (docs/settings.md lists them with their defaults). Parsing has no side effects: the library
// reads `RuntimeSettings.current` (the environment, parsed once on first use). What a setting does
// to the process happens only where an executable asks for it, first thing in `main`:
// `StartupEnvironment.prepare()` (may re-execute the process), then
// `RuntimeSettings.current.apply()` (thread counts of every pool, allocator tuning).
import Foundation

/// The process-wide settings read from the environment.
public struct RuntimeSettings: Sendable, Equatable {
    /// The environment variables, one per setting.
    public enum Variable: String, CaseIterable, Sendable {
        case threads = "GKNET_THREADS"
        case threadPool = "GKNET_THREAD_POOL"
        case mallocTuning = "GKNET_MALLOC_TUNING"
        case winogradMinimumTiles = "GKNET_WINOGRAD_MIN_TILES"
        case winogradWeightCache = "GKNET_WINOGRAD_WEIGHT_CACHE"
        case convolutionTuning = "GKNET_CONV_TUNING"
        case profile = "GKNET_PROFILE"
        case model = "GKNET_MODEL"
        case apiKey = "GKNET_API_KEY"
    }

    /// Which threads run our own parallel loops.
    public enum ThreadPool: String, Sendable {
        /// Dispatch's concurrentPerform (the default).
        case dispatch
        /// libgomp's pool, the one OpenBLAS and oneDNN use (`GKNET_THREAD_POOL=openmp`).
        case openMP = "openmp"
    }

    /// `GKNET_THREADS`: threads of every kernel (our loops, OpenBLAS, oneDNN); nil = all cores.
    public var threads: Int?
    /// `GKNET_THREAD_POOL`: `openmp` puts our loops on libgomp's pool; anything else = Dispatch.
    public var threadPool: ThreadPool = .dispatch
    /// `GKNET_MALLOC_TUNING`: `0` keeps glibc's allocator defaults (see `AllocatorTuning`).
    public var mallocTuning = true
    /// `GKNET_WINOGRAD_MIN_TILES`: below this many 4x4 output tiles a Winograd convolution runs
    /// on oneDNN instead (`WinogradPolicy.minimumTiles`); nil = chosen for the processor
    /// (`WinogradPolicy.automaticMinimumTiles`).
    public var winogradMinimumTiles: Int?
    /// `GKNET_WINOGRAD_WEIGHT_CACHE`: `0` transforms Winograd weights on every call.
    public var winogradWeightCache = true
    /// `GKNET_CONV_TUNING`: `0` keeps the fixed rule (`WinogradPolicy`) for training convolutions
    /// too instead of measuring each geometry's faster backend (`ConvolutionTuning`). Measuring is
    /// also off while `GKNET_WINOGRAD_MIN_TILES` is set (that setting then decides).
    public var convolutionTuning = true
    /// `GKNET_PROFILE`: set and not `0` times every op (`OpProfiler`).
    public var profile = false
    /// `GKNET_PROFILE=cpu`: the op profiler reads the process's CPU time (all its threads) instead
    /// of the wall clock: steady on a busy machine, and at several threads it shows what each op
    /// costs in work plus waiting and synchronising.
    public var profileCPUTime = false
    /// `GKNET_MODEL`: the checkpoint used when a command gets no `--model` (before the bundled one).
    public var model: String?
    /// `GKNET_API_KEY`: the key `gknet serve` asks of API clients when it gets no `--api-key`.
    public var apiKey: String?

    /// The defaults, as with an empty environment.
    public init() {}

    /// The settings `environment` describes; a value that does not parse keeps the default.
    public init(environment: [String: String]) {
        func value(_ variable: Variable) -> String? { environment[variable.rawValue] }
        threads = value(.threads).flatMap { Int($0) }
        threadPool = value(.threadPool) == ThreadPool.openMP.rawValue ? .openMP : .dispatch
        mallocTuning = value(.mallocTuning) != "0"
        winogradMinimumTiles = value(.winogradMinimumTiles).flatMap { Int($0) }
        winogradWeightCache = value(.winogradWeightCache) != "0"
        convolutionTuning = value(.convolutionTuning) != "0"
        profile = value(.profile).map { $0 != "0" } ?? false
        profileCPUTime = value(.profile) == "cpu"
        model = value(.model).flatMap { $0.isEmpty ? nil : $0 }
        apiKey = value(.apiKey).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// This process's settings: its environment, parsed once on first use.
    public static let current = RuntimeSettings(environment: ProcessInfo.processInfo.environment)

    /// The thread count kernels use: `threads`, at least 1, or all cores.
    public var threadCount: Int { max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount) }

    /// Applies the settings that change the process: the thread count of our loops, OpenBLAS and
    /// oneDNN, the allocator tuning, and measured backends for training convolutions. Executables
    /// call it once at start-up, before any kernel runs; a program that never does runs our loops at
    /// `threadCount` with the libraries and the allocator at their own defaults, and its training
    /// convolutions on the fixed rule.
    public func apply() {
        Threading.start(threads: threadCount)
        if mallocTuning { AllocatorTuning.apply() }
        ConvolutionTuning.shared.isEnabled = convolutionTuning && winogradMinimumTiles == nil
    }
}
