// Threading: a fixed thread count (RuntimeSettings.threads, default all cores) for our own loops
// (Dispatch by default), OpenBLAS (OpenMP build) and oneDNN (both on libgomp's pool).
// RuntimeSettings.threadPool = .openMP also puts our loops on libgomp's pool (see OpenMPRuntime).
import Dispatch
import Foundation

#if canImport(CGKNetDNNL)
import CGKNetDNNL
#endif

/// Thread settings for every kernel in the process.
public enum Threading {
    /// The number of threads kernels use: `RuntimeSettings.current.threadCount` until
    /// `configure(threads:)` (or `RuntimeSettings.apply()`) sets it.
    public static var count: Int {
        get {
            let configured = state.withLock { $0 }
            return perThreadLimit.map { min($0, configured) } ?? configured
        }
        set { configure(threads: newValue) }
    }

    /// A cap on `count` for the code that runs inside `$perThreadLimit.withValue(n) { ... }` on this
    /// thread (nil: none): for several single-threaded computations side by side, such as the model
    /// replicas of a training step (`ReplicatedTrainingStep`), each of whose kernels must stay on its
    /// own thread. OpenBLAS and oneDNN follow it through `withBLASOnCallingThread`.
    @TaskLocal public static var perThreadLimit: Int?

    private static let state = LockedInteger(RuntimeSettings.current.threadCount)

    /// Sets the thread count for our loops, OpenBLAS and oneDNN.
    ///
    /// - Warning: a process-wide setting: call it at start-up, before other threads run kernels.
    ///   Changing the count makes OpenBLAS (`openblas_set_num_threads`, OpenMP build) free and
    ///   allocate its per-thread buffers without a lock, under any BLAS call running on another
    ///   thread. Setting the count it already has changes nothing.
    public static func configure(threads: Int) {
        let threads = max(1, threads)
        let changed = state.withLock { current -> Bool in
            defer { current = threads }
            return current != threads
        }
        if changed { applyToLibraries(threads) }
    }

    private static func applyToLibraries(_ threads: Int) {
        #if canImport(CGKNetDNNL)
        omp_set_num_threads(Int32(threads))
        #endif
        BLAS.setThreads(threads)
    }

    /// Gives the calling thread the current thread count for oneDNN and OpenBLAS. Their OpenMP
    /// thread count is a per-thread setting (`omp_set_num_threads` changes only the thread that
    /// calls it; a thread started later begins at libgomp's default, all cores), so a long-lived
    /// thread that runs kernels (a `gknet serve` worker) calls this once when it starts.
    public static func applyToCurrentThread(threads: Int? = nil) {
        #if canImport(CGKNetDNNL)
        omp_set_num_threads(Int32(max(1, threads ?? count)))
        #endif
    }

    /// The OpenMP thread count oneDNN and OpenBLAS use on the calling thread (nil without OpenMP).
    public static var currentThreadLibraryThreads: Int? {
        #if canImport(CGKNetDNNL)
        return Int(omp_get_max_threads())
        #else
        return nil
        #endif
    }

    /// Sets the thread count and applies it to OpenBLAS and oneDNN even when it is unchanged (the
    /// libraries start at their own defaults): `RuntimeSettings.apply()` at start-up.
    static func start(threads: Int) {
        let threads = max(1, threads)
        state.withLock { $0 = threads }
        applyToLibraries(threads)
    }
}

/// A lock-protected integer (Foundation's NSLock keeps this portable).
final class LockedInteger: @unchecked Sendable {
    private var value: Int
    private let lock = NSLock()
    init(_ initial: Int) { value = initial }
    func withLock<R>(_ body: (inout Int) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Runs `body(range)` over `0..<count` split into contiguous chunks, one per thread.
/// Work below `minimumPerThread` items per thread runs inline on the caller.
@inlinable
public func parallelChunks(_ count: Int, minimumPerThread: Int = 4096, _ body: (Range<Int>) -> Void) {
    let threads = min(Threading.count, max(1, count / max(1, minimumPerThread)))
    if threads <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    let chunk = (count + threads - 1) / threads
    withoutActuallyEscaping(body) { body in
        // Kernels hand us closures over raw buffers, each chunk writing a disjoint range.
        runOnThreads(threads) { t in
            let start = t * chunk
            let end = min(count, start + chunk)
            if start < end { body(start..<end) }
        }
    }
}

/// Runs `body` with BLAS (OpenMP OpenBLAS) and oneDNN kept on the calling thread: for work items
/// of `parallelChunks` that call BLAS themselves. On libgomp's pool a nested call stays on its
/// thread anyway; on a Dispatch thread BLAS would otherwise start an OpenMP team of its own per
/// call (more threads than cores). The OpenMP thread count is a per-thread setting
/// (`omp_get_max_threads()`), restored afterwards.
public func withBLASOnCallingThread<Result>(_ body: () throws -> Result) rethrows -> Result {
    #if canImport(CGKNetDNNL)
    let previous = omp_get_max_threads()
    omp_set_num_threads(1)
    defer { omp_set_num_threads(previous) }
    #endif
    return try body()
}

/// Calls `body(t)` for t in 0..<threads, concurrently, and returns when all are done.
///
/// The threads are libgomp's (OpenMP) when it is loaded, the pool oneDNN and OpenBLAS use too:
/// one pool for the whole process, no two sets of threads competing for the cores, and BLAS or
/// oneDNN calls made inside `body` see that they run in a parallel region and stay on their
/// thread. Without libgomp (macOS) this is Dispatch's concurrentPerform.
@usableFromInline
func runOnThreads(_ threads: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        guard let openMP = OpenMPRuntime.shared else {
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in box.value(t) }
            return
        }
        var job = OpenMPJob(body: body, count: threads, threadNumber: openMP.threadNumber, teamSize: openMP.teamSize)
        withUnsafeMutablePointer(to: &job) { pointer in
            openMP.parallel(openMPTrampoline, UnsafeMutableRawPointer(pointer), UInt32(threads), 0)
        }
    }
}

/// What one OpenMP parallel region runs: `body(t)` for t in 0..<count, spread over the team.
struct OpenMPJob {
    let body: (Int) -> Void
    let count: Int
    let threadNumber: @convention(c) () -> Int32
    let teamSize: @convention(c) () -> Int32
}

/// The region's function: each team member takes t = its number, + team size, ... (a nested region
/// gets a team of one, which then runs every t itself).
private let openMPTrampoline: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    let job = raw!.assumingMemoryBound(to: OpenMPJob.self)
    let (first, step) = (Int(job.pointee.threadNumber()), max(1, Int(job.pointee.teamSize())))
    var t = first
    while t < job.pointee.count {
        job.pointee.body(t)
        t += step
    }
}

/// libgomp's entry points, looked up once (nil when the process has no libgomp).
struct OpenMPRuntime: @unchecked Sendable {
    /// `void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)`.
    let parallel:
        @convention(c) (@convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?, UInt32, UInt32) ->
            Void
    let threadNumber: @convention(c) () -> Int32
    let teamSize: @convention(c) () -> Int32

    static let shared: OpenMPRuntime? = {
        #if os(Linux)
        // NOTE: opt-in (RuntimeSettings.threadPool); the default is Dispatch for our loops. It was
        // made opt-in after a crash in a parallel test run; that crash was oneDNN's thread-local
        // scratchpad (OneDNN.swift), not this pool (docs/robustness.md, "Concurrent kernels").
        if RuntimeSettings.current.threadPool != .openMP { return nil }
        let handle = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT: every loaded library
        guard let parallel = dlsym(handle, "GOMP_parallel"), let number = dlsym(handle, "omp_get_thread_num"),
            let size = dlsym(handle, "omp_get_num_threads")
        else { return nil }
        return OpenMPRuntime(
            parallel: unsafeBitCast(
                parallel,
                to: (@convention(c) (
                    @convention(c) (UnsafeMutableRawPointer?) -> Void, UnsafeMutableRawPointer?, UInt32, UInt32
                ) -> Void).self),
            threadNumber: unsafeBitCast(number, to: (@convention(c) () -> Int32).self),
            teamSize: unsafeBitCast(size, to: (@convention(c) () -> Int32).self))
        #else
        return nil
        #endif
    }()
}

/// Runs `body(i)` for every `i` in `0..<count`, spread over the threads (for coarse work items).
@inlinable
public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
    parallelChunks(count, minimumPerThread: 1) { range in
        for i in range { body(i) }
    }
}

/// Wraps a value whose cross-thread use the caller has made safe (disjoint writes per chunk).
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}

/// Calls `body(i)` for i in 0..<count concurrently on Dispatch's worker threads, not on the kernels'
/// OpenMP pool: for work that runs beside the kernels (the data loader's decoding on its background
/// queue, the synthesis of composites), where joining libgomp's team from another thread would nest
/// parallel regions. Returns when all are done.
public func concurrentForEach(_ count: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let work = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: count) { i in work.value(i) }
    }
}

/// `body(i)` for every i in 0..<count on `threads` of Dispatch's worker threads (`concurrentForEach`),
/// each taking the next i when it finishes one, so items of uneven cost (a loader's samples) keep
/// the threads equally busy. Returns when all are done.
public func concurrentForEach(_ count: Int, threads: Int, _ body: (Int) -> Void) {
    let following = LockedInteger(0)
    concurrentForEach(max(1, min(threads, count))) { _ in
        while true {
            let i = following.withLock { next -> Int in
                defer { next += 1 }
                return next
            }
            guard i < count else { return }
            body(i)
        }
    }
}

/// `body(i)` for i in 0..<count on Dispatch's worker threads (`concurrentForEach`), results in index order.
public func concurrentMap<T>(_ count: Int, _ body: (Int) -> T) -> [T] {
    var results = [T?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { slots in
        let box = UncheckedSendable(slots)
        concurrentForEach(count) { i in box.value[i] = body(i) }
    }
    return results.map { $0! }
}
