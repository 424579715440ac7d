// Values kept in memory up to a byte budget: a loader that reads the same few hundred photos every
// epoch (fresh composites) decodes and converts each once instead of once per sample. Decoding and
// converting were about 40 % of the loader's CPU at 128 px (issue 26, docs/benchmarks.md "Photos
// kept in memory").
import Foundation

/// Values by key, kept until `budgetBytes` is reached; then further values are not kept, and none
/// is ever evicted (a loader that visits every item once per epoch would gain nothing from
/// evicting: with a budget for part of the data, that part stays fast). Thread-safe.
public final class MemoryBudgetCache<Value>: @unchecked Sendable {
    /// The most bytes kept (0: nothing is kept).
    public let budgetBytes: Int
    private let lock = NSLock()
    private var values: [String: Value] = [:]
    private var storedBytes = 0

    public init(budgetBytes: Int) {
        self.budgetBytes = max(0, budgetBytes)
    }

    /// Items kept and their bytes.
    public var usage: (items: Int, bytes: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (values.count, storedBytes)
    }

    /// The value kept under `key`, if any.
    public func value(for key: String) -> Value? {
        lock.lock()
        defer { lock.unlock() }
        return values[key]
    }

    /// Keeps `value` under `key` when its `bytes` fit in what is left of the budget (a key already
    /// kept stays as it is). Returns whether it is kept.
    @discardableResult
    public func keep(_ value: Value, for key: String, bytes: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if values[key] != nil { return true }
        guard bytes >= 0, storedBytes + bytes <= budgetBytes else { return false }
        values[key] = value
        storedBytes += bytes
        return true
    }
}
