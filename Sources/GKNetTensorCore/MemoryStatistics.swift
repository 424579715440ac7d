// Live and peak bytes of tensor storage, counted at every Tensor allocation and release (Tensor.swift
// calls `allocated`/`released`): what `gknet inspect` and `gknet-bench memory` report as the peak
// activation memory of a forward pass.
#if os(Linux)
import Synchronization
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counts the bytes of every `Tensor`'s elements (4 per Float) from its `init` to its `deinit`.
///
/// Two views of the same events:
/// - process-wide: `liveBytes` and `peakBytes` (the largest `liveBytes` since `resetPeak()`),
///   atomic counters that any thread updates;
/// - per thread: `measurePeak(_:)` reports the peak reached by tensors created and released on the
///   calling thread while its body runs, above what that thread held when it started. Other
///   threads (e.g. tests running in parallel) do not disturb it. A model's forward creates its
///   tensors on the calling thread (kernels parallelise loops over buffers, not tensor creation).
///
/// What is counted: the logical size of each tensor, `shape.elementCount * 4`. Tensors that share
/// one copy-on-write buffer (`reshaped`, `detached`) each count in full, so the figures are an upper
/// bound on distinct tensor storage. Not counted: `grad` arrays, scratch buffers inside kernels
/// (im2col, oneDNN workspaces) and arrays that pullbacks capture instead of tensors; the process's
/// resident set (`VmHWM`, see `gknet-bench memory`) measures everything.
///
/// Cost: one atomic add (plus a compare-and-swap when a new peak is set) and two thread-local
/// additions per tensor allocation and release; it is always on.
public enum MemoryStatistics {
    /// Bytes of tensor storage alive in the process now.
    public static var liveBytes: Int { global.live }
    /// The largest `liveBytes` since the process started or since the last `resetPeak()`.
    public static var peakBytes: Int { global.peak }
    /// Starts a new process-wide peak at the current `liveBytes`.
    public static func resetPeak() { global.resetPeak() }

    /// Bytes of tensors created minus bytes released on the calling thread, since it started.
    /// (Negative when the thread released tensors other threads created.)
    public static var currentThreadLiveBytes: Int { threadCounters().pointee.live }

    /// Runs `body` and returns its result with the peak tensor bytes it held on this thread, above
    /// what this thread held when `body` started (inputs and parameters created before are not
    /// counted; everything `body` allocates, including what it returns, is).
    public static func measurePeak<T>(_ body: () throws -> T) rethrows -> (result: T, peakBytes: Int) {
        let counters = threadCounters()
        let baseline = counters.pointee.live
        let outerPeak = counters.pointee.peak
        counters.pointee.peak = baseline
        defer { counters.pointee.peak = max(outerPeak, counters.pointee.peak) }  // nested measurements
        let result = try body()
        return (result, counters.pointee.peak - baseline)
    }

    /// Called by `Tensor.init` with the storage size of the new tensor.
    @usableFromInline
    static func allocated(bytes: Int) {
        global.add(bytes)
        let counters = threadCounters()
        counters.pointee.live += bytes
        if counters.pointee.live > counters.pointee.peak { counters.pointee.peak = counters.pointee.live }
    }

    /// Called by `Tensor.deinit` with the size that `allocated` was given.
    @usableFromInline
    static func released(bytes: Int) {
        global.add(-bytes)
        threadCounters().pointee.live -= bytes
    }

    private static let global = GlobalCounters()
}

// MARK: - Process-wide counters

#if os(Linux)
/// Lock-free live/peak pair (Synchronization's `Atomic`, available on Linux with Swift 6).
private final class GlobalCounters: Sendable {
    private let liveValue = Atomic<Int>(0)
    private let peakValue = Atomic<Int>(0)

    var live: Int { liveValue.load(ordering: .relaxed) }
    var peak: Int { peakValue.load(ordering: .relaxed) }

    func add(_ bytes: Int) {
        let now = liveValue.wrappingAdd(bytes, ordering: .relaxed).newValue
        guard bytes > 0 else { return }
        var seen = peakValue.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peakValue.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    func resetPeak() { peakValue.store(live, ordering: .relaxed) }
}
#else
/// The same with a lock, where `Atomic` needs a newer OS than the package's deployment target.
private final class GlobalCounters: @unchecked Sendable {
    private var liveValue = 0, peakValue = 0
    private let lock = NSLock()

    var live: Int {
        lock.lock()
        defer { lock.unlock() }
        return liveValue
    }
    var peak: Int {
        lock.lock()
        defer { lock.unlock() }
        return peakValue
    }

    func add(_ bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        liveValue += bytes
        peakValue = max(peakValue, liveValue)
    }

    func resetPeak() {
        lock.lock()
        defer { lock.unlock() }
        peakValue = liveValue
    }
}
#endif

// MARK: - Per-thread counters (pthread thread-specific storage, freed when the thread exits)

private struct ThreadCounters {
    var live = 0
    var peak = 0
}

#if canImport(Darwin)
private func freeThreadCounters(_ pointer: UnsafeMutableRawPointer) {
    pointer.assumingMemoryBound(to: ThreadCounters.self).deallocate()
}
#else
private func freeThreadCounters(_ pointer: UnsafeMutableRawPointer?) {
    pointer?.assumingMemoryBound(to: ThreadCounters.self).deallocate()
}
#endif

private let threadCountersKey: pthread_key_t = {
    var key = pthread_key_t()
    let status = pthread_key_create(&key, freeThreadCounters)
    precondition(status == 0, "MemoryStatistics: pthread_key_create failed (\(status))")
    return key
}()

/// This thread's counters, created on first use.
private func threadCounters() -> UnsafeMutablePointer<ThreadCounters> {
    if let existing = pthread_getspecific(threadCountersKey) {
        return existing.assumingMemoryBound(to: ThreadCounters.self)
    }
    let counters = UnsafeMutablePointer<ThreadCounters>.allocate(capacity: 1)
    counters.initialize(to: ThreadCounters())
    pthread_setspecific(threadCountersKey, counters)
    return counters
}
