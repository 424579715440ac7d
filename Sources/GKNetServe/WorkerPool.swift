// The workers of `gknet serve`: a fixed number of harmonizers (one model copy each) that run jobs
// on threads of their own, a bounded queue of waiting requests, and a deadline per request. The
// network's CPU work never runs on the server's event loops.
//
// Each worker is one long-lived thread, not a dispatch queue: glibc gives a thread its own malloc
// arena, and the engine keeps freed heap memory for reuse (TensorCore's allocator tuning), so a
// job that moved to a new thread would grow the process by one more working set (seen as a 31 MB
// step of RSS in a 10-minute soak). With one thread per worker the RSS stays at workers x one
// working set.
import Dispatch
import Foundation
import GKNetTensorCore

/// Why the pool did not run a job.
public enum PoolRefusal: Error, Sendable, Equatable {
    /// Every worker is busy and `queueCapacity` requests already wait.
    case queueFull
    /// The deadline passed while the request waited or while its job ran (a running job cannot be
    /// interrupted: it finishes in the background and then frees its worker).
    case timedOut
    /// The pool is shutting down.
    case closed
    /// The request's `JobControl` was cancelled (its client went away, or it got its 504) before
    /// the job started or between two of its stages.
    case cancelled
}

/// Lets a request stop its job: the job calls `check()` between its stages.
public final class JobControl: @unchecked Sendable {
    private let lock = NSLock()
    private var isCancelled = false

    public init() {}

    /// Asks the job to stop at its next `check()`.
    public func cancel() { lock.withLock { isCancelled = true } }

    public var cancelled: Bool { lock.withLock { isCancelled } }

    /// - Throws: `PoolRefusal.cancelled` once `cancel()` was called.
    public func check() throws {
        if cancelled { throw PoolRefusal.cancelled }
    }
}

/// A fixed set of workers, each owning one `Resource` (a harmonizer with its own model), with a
/// FIFO queue of at most `queueCapacity` waiting requests.
public final class WorkerPool<Resource: Sendable>: @unchecked Sendable {
    public let workerCount: Int
    public let queueCapacity: Int
    private let lock = NSLock()
    private var idle: [Int]
    private var waiting: [Waiter] = []
    private var isClosed = false
    private let resources: [Resource]
    private let threads: [WorkerThread]

    private final class Waiter: @unchecked Sendable {
        var continuation: CheckedContinuation<Int, any Error>?
    }

    /// - Parameters:
    ///   - resources: one per worker (at least one).
    ///   - threadSetup: runs first on each worker's thread (the engine's per-thread settings).
    public init(resources: [Resource], queueCapacity: Int, threadSetup: @escaping @Sendable () -> Void = {}) {
        precondition(!resources.isEmpty, "WorkerPool: at least one worker")
        self.resources = resources
        workerCount = resources.count
        self.queueCapacity = max(0, queueCapacity)
        idle = Array(resources.indices.reversed())
        threads = resources.indices.map { WorkerThread(name: "gknet.serve.worker.\($0)", setup: threadSetup) }
    }

    deinit {
        for thread in threads { thread.stop() }
    }

    /// Requests waiting for a worker.
    public var queueLength: Int { lock.withLock { waiting.count } }
    /// Workers running a job.
    public var busyWorkers: Int { lock.withLock { workerCount - idle.count } }

    /// Whether a request arriving now would be refused for a full queue (checked before its body
    /// is read; `run` decides for good).
    public var isFull: Bool { lock.withLock { idle.isEmpty && waiting.count >= queueCapacity } }

    /// Runs `job` on a free worker's thread with that worker's resource.
    ///
    /// When the deadline passes, `control` is cancelled: a running job that calls `control.check()`
    /// between its stages stops at the next one and frees its worker; a job whose control was
    /// cancelled before it started does not start.
    /// - Throws: `PoolRefusal` (queue full, deadline passed, closed, cancelled) or the job's own error.
    public func run<Output: Sendable>(
        timeout: Duration, control: JobControl = JobControl(), _ job: @escaping @Sendable (Resource) throws -> Output
    ) async throws -> Output {
        let deadline =
            DispatchTime.now()
            + .nanoseconds(
                Int(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
        let worker: Int
        do {
            worker = try await acquire(deadline: deadline)
        } catch {
            control.cancel()
            throw error
        }
        let outcome = PendingResult<Output>()
        let resource = resources[worker]
        threads[worker].submit {
            let result = Result {
                try control.check()
                return try job(resource)
            }
            self.release(worker)
            outcome.fulfil(result)
        }
        do {
            return try await outcome.value(deadline: deadline, timeout: PoolRefusal.timedOut)
        } catch {
            control.cancel()
            throw error
        }
    }

    /// Stops accepting work; waiting requests are refused with `.closed` (running jobs finish).
    public func close() {
        let refused: [Waiter] = lock.withLock {
            isClosed = true
            defer { waiting.removeAll() }
            return waiting
        }
        for waiter in refused { waiter.continuation?.resume(throwing: PoolRefusal.closed) }
    }

    private func acquire(deadline: DispatchTime) async throws -> Int {
        let waiter = Waiter()
        return try await withCheckedThrowingContinuation { continuation in
            let immediate: Result<Int, any Error>? = lock.withLock {
                if isClosed { return .failure(PoolRefusal.closed) }
                if let worker = idle.popLast() { return .success(worker) }
                if waiting.count >= queueCapacity { return .failure(PoolRefusal.queueFull) }
                waiter.continuation = continuation
                waiting.append(waiter)
                return nil
            }
            if let immediate {
                continuation.resume(with: immediate)
                return
            }
            DispatchQueue.global().asyncAfter(deadline: deadline) { [self] in
                let expired: Bool = lock.withLock {
                    guard let index = waiting.firstIndex(where: { $0 === waiter }) else { return false }
                    waiting.remove(at: index)
                    return true
                }
                if expired { waiter.continuation?.resume(throwing: PoolRefusal.timedOut) }
            }
        }
    }

    private func release(_ worker: Int) {
        let next: Waiter? = lock.withLock {
            if waiting.isEmpty {
                idle.append(worker)
                return nil
            }
            return waiting.removeFirst()
        }
        next?.continuation?.resume(returning: worker)
    }
}

/// One thread that runs the jobs submitted to it, in order, until `stop()`.
private final class WorkerThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    init(name: String, setup: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            setup()
            loop()
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    /// Lets the thread end once its queued jobs are done.
    func stop() {
        condition.withLock {
            stopping = true
            condition.signal()
        }
    }

    private func loop() {
        while true {
            let job: (@Sendable () -> Void)? = condition.withLock {
                while jobs.isEmpty && !stopping { condition.wait() }
                return jobs.isEmpty ? nil : jobs.removeFirst()
            }
            guard let job else { return }
            job()
        }
    }
}
