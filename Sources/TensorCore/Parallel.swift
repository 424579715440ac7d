// The one threading model of the package: a fixed thread count (GKNET_THREADS, default all cores)
// shared by our own loops (Dispatch), OpenBLAS and oneDNN (both on the one libgomp pool).
import Dispatch
import Foundation
#if canImport(CDNNL)
import CDNNL
#endif

/// Thread settings for every kernel in the process.
public enum Threading {
    /// The number of threads kernels use. Read once from `GKNET_THREADS` (default: all cores).
    public static var count: Int {
        get { state.withLock { $0 } }
        set { configure(threads: newValue) }
    }

    private static let state: Mutex = Mutex(initial: {
        let fromEnvironment = ProcessInfo.processInfo.environment["GKNET_THREADS"].flatMap { Int($0) }
        let threads = max(1, fromEnvironment ?? ProcessInfo.processInfo.activeProcessorCount)
        applyToLibraries(threads)
        return threads
    }())

    /// Sets the thread count for our loops, OpenBLAS and oneDNN.
    public static func configure(threads: Int) {
        let threads = max(1, threads)
        state.withLock { $0 = threads }
        applyToLibraries(threads)
    }

    private static func applyToLibraries(_ threads: Int) {
        #if canImport(CDNNL)
        omp_set_num_threads(Int32(threads))
        #endif
        BLAS.setThreads(threads)
    }
}

/// A minimal lock-protected integer (Foundation's NSLock keeps this portable).
final class Mutex: @unchecked Sendable {
    private var value: Int
    private let lock = NSLock()
    init(initial: Int) { value = initial }
    func withLock<R>(_ body: (inout Int) -> R) -> R {
        lock.lock(); defer { lock.unlock() }
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
        let box = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let start = t * chunk
            let end = min(count, start + chunk)
            if start < end { box.value(start..<end) }
        }
    }
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
