// The package's one future type: a value (or error) that one thread delivers once and others wait
// for, blocking (`wait()`) or from async code with a deadline (`value(deadline:timeout:)`). It
// carries the data loader's next batch, the batch command's prefetched image and a service
// worker's result.
import Dispatch
import Foundation

/// A result delivered once, awaited by any number of blocking waiters and at most one async one.
public final class PendingResult<Value: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<Value, any Error>?
    private var continuation: CheckedContinuation<Value, any Error>?
    /// The async waiter has had its answer (the value, or its deadline passed).
    private var answered = false

    public init() {}

    /// Runs `work` on `queue` and delivers what it returns or throws.
    public convenience init(
        on queue: DispatchQueue = .global(qos: .userInitiated), _ work: @escaping @Sendable () throws -> Value
    ) {
        self.init()
        queue.async { self.fulfil(Result { try work() }) }
    }

    /// Delivers the result; later calls are ignored.
    public func fulfil(_ value: Result<Value, any Error>) {
        condition.lock()
        guard result == nil else {
            condition.unlock()
            return
        }
        result = value
        let waiting = takeContinuation()
        condition.broadcast()
        condition.unlock()
        waiting?.resume(with: value)
    }

    /// Blocks until the result is delivered; returns the value or throws the error. May be called
    /// more than once, from any thread.
    public func wait() throws -> Value {
        condition.lock()
        while result == nil { condition.wait() }
        let delivered = result!
        condition.unlock()
        return try delivered.get()
    }

    /// Suspends until the result is delivered, or throws `timeout` once `deadline` passes (the
    /// result may still arrive later; it is then dropped).
    public func value(deadline: DispatchTime, timeout: any Error) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            if let result {
                answered = true
                condition.unlock()
                continuation.resume(with: result)
                return
            }
            self.continuation = continuation
            condition.unlock()
            DispatchQueue.global().asyncAfter(deadline: deadline) { [self] in
                condition.lock()
                let expired = takeContinuation()
                condition.unlock()
                expired?.resume(throwing: timeout)
            }
        }
    }

    /// The async waiter still waiting, now answered (call with the lock held).
    private func takeContinuation() -> CheckedContinuation<Value, any Error>? {
        guard !answered, let waiting = continuation else { return nil }
        answered = true
        continuation = nil
        return waiting
    }
}
