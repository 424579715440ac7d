// RuntimeSettings.profile: wall time and calls per op (and per convolution shape), for finding what
// dominates a forward pass (`gknet-bench model --case paper-infer` prints the table; docs/benchmarks.md,
// Model). Off by default: then an op pays one test of a constant.
import Dispatch
import Foundation

public enum OpProfiler {
    /// Whether ops time themselves (`RuntimeSettings.profile`).
    public static let isEnabled: Bool = RuntimeSettings.current.profile
    /// Whether times are the process's CPU time, all threads (`GKNET_PROFILE=cpu`), rather than wall time.
    public static let usesCPUTime: Bool = RuntimeSettings.current.profileCPUTime

    /// The profiler's clock in nanoseconds: wall (monotonic) or the process's CPU time.
    public static func now() -> UInt64 {
        guard usesCPUTime else { return DispatchTime.now().uptimeNanoseconds }
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: [String: (calls: Int, nanoseconds: UInt64)] = [:]
    /// Nesting depth on the main thread: only the outermost op is timed (no double counting).
    nonisolated(unsafe) private static var depth = 0

    /// Starts timing an op; returns a token for `end` (0: not timed). Only main-thread calls are timed.
    @inline(__always)
    public static func begin() -> UInt64 {
        guard isEnabled else { return 0 }
        return startTiming()
    }

    /// Ends what `begin` started, charging the time to `name`.
    @inline(__always)
    public static func end(_ token: UInt64, _ name: @autoclosure () -> String) {
        guard isEnabled else { return }
        stopTiming(token, name())
    }

    private static func startTiming() -> UInt64 {
        guard Thread.isMainThread else { return 0 }
        depth += 1
        return depth == 1 ? max(1, now()) : 0
    }

    private static func stopTiming(_ token: UInt64, _ name: String) {
        guard Thread.isMainThread else { return }
        depth -= 1
        guard token != 0 else { return }
        let elapsed = now() - token
        lock.lock()
        defer { lock.unlock() }
        let previous = totals[name] ?? (0, 0)
        totals[name] = (previous.calls + 1, previous.nanoseconds + elapsed)
    }

    /// Forgets every total.
    public static func reset() {
        lock.lock()
        defer { lock.unlock() }
        totals = [:]
    }

    /// The totals so far, largest first: (name, calls, milliseconds).
    public static func snapshot() -> [(name: String, calls: Int, milliseconds: Double)] {
        lock.lock()
        defer { lock.unlock() }
        return totals.map { (name: $0.key, calls: $0.value.calls, milliseconds: Double($0.value.nanoseconds) / 1e6) }
            .sorted { $0.milliseconds > $1.milliseconds }
    }

    /// A text table of `snapshot()` with each time divided by `runs` (per pass) and its share.
    public static func report(runs: Int = 1) -> String {
        let rows = snapshot()
        let total = rows.reduce(0) { $0 + $1.milliseconds }
        func pad(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(1, width - text.count))
        }
        var lines = [pad("op", 44) + "   calls    ms/pass   share"]
        for row in rows {
            lines.append(
                pad(row.name, 44)
                    + String(
                        format: "%8d %10.2f %6.1f%%", row.calls / max(1, runs), row.milliseconds / Double(max(1, runs)),
                        100 * row.milliseconds / max(1e-9, total)))
        }
        lines.append(pad("total (timed ops)", 44) + String(format: "         %10.2f", total / Double(max(1, runs))))
        return lines.joined(separator: "\n")
    }
}
