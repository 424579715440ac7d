// The measurement kit every benchmark uses: one clock (wall, or process CPU time with --cpu-time),
// one median, the process's resident memory, and a wait for an idle machine. Benchmarks report a
// failure by throwing `BenchmarkError`; the argument parser prints it and the process exits 1.
import Foundation

/// A benchmark that cannot run (unwritable output, a missing input, an unknown case).
struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Measure {
    /// Time the process's CPU instead of the wall clock (--cpu-time: a steadier figure for 1-thread
    /// runs on a busy machine; with more threads it also counts spinning workers). Set once by the
    /// command before it measures.
    nonisolated(unsafe) static var usesCPUTime = false

    /// Now, in seconds, on the benchmark clock.
    static func now() -> Double {
        var time = timespec()
        clock_gettime(usesCPUTime ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Seconds on the wall clock, whatever --cpu-time says (for throughputs of a whole process).
    static func wallNow() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Seconds `body` takes on the benchmark clock.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = now()
        try body()
        return now() - start
    }

    /// The index of the median of `samples` (the upper one of an even count): which run to report in full.
    static func medianIndex(_ samples: [Double]) -> Int {
        precondition(!samples.isEmpty, "Measure.medianIndex: no samples")
        return samples.indices.sorted { samples[$0] < samples[$1] }[samples.count / 2]
    }

    /// The median of `samples` (the mean of the middle two for an even count).
    static func median(_ samples: [Double]) -> Double {
        precondition(!samples.isEmpty, "Measure.median: no samples")
        let sorted = samples.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Median milliseconds of `runs` calls after `warmup` untimed ones.
    static func medianMilliseconds(runs: Int, warmup: Int, _ body: () throws -> Void) rethrows -> Double {
        for _ in 0..<warmup { try body() }
        return median(try (0..<max(1, runs)).map { _ in try seconds(body) * 1e3 })
    }

    /// Median milliseconds after two warm-up calls, timing until `budget` seconds have passed (5 to 100 runs).
    static func medianMilliseconds(budget: Double, _ body: () -> Void) -> Double {
        body()
        body()
        var samples: [Double] = []
        let start = wallNow()
        while samples.count < 5 || (samples.count < 100 && wallNow() - start < budget) {
            samples.append(seconds(body) * 1e3)
        }
        return median(samples)
    }

    // MARK: - Memory

    /// A kB field of /proc/self/status (`VmRSS`: resident now, `VmHWM`: peak) in bytes; nil where unreadable.
    static func residentBytes(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let number = line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
                .flatMap { Int($0) }
            return number.map { $0 * 1024 }
        }
        return nil
    }

    /// The process's peak resident set size so far, in MB (VmHWM; getrusage where /proc is missing).
    static func peakResidentMegabytes() -> Double {
        if let bytes = residentBytes("VmHWM") { return Double(bytes) / 1_048_576 }
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / 1_048_576
        #endif
    }

    /// Resets VmHWM to the current RSS (writing 5 to /proc/self/clear_refs, Linux >= 4.0).
    /// - Returns: whether it could.
    @discardableResult
    static func resetPeakResident() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    // MARK: - An idle machine

    /// The idle share of all CPU time over `interval` seconds, from /proc/stat (1 where unreadable).
    static func idleFraction(over interval: Double) -> Double {
        func snapshot() -> (idle: Double, total: Double)? {
            guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                let line = text.split(separator: "\n").first
            else { return nil }
            let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            guard fields.count >= 5 else { return nil }
            return (fields[3] + fields[4], fields.reduce(0, +))
        }
        guard let before = snapshot() else { return 1 }
        Thread.sleep(forTimeInterval: interval)
        guard let after = snapshot() else { return 1 }
        return (after.idle - before.idle) / max(1e-9, after.total - before.total)
    }

    /// Waits (at most `maximumSeconds`) until the idle capacity covers `threads` cores plus a margin
    /// (the rule of Scripts/bench_reference.py). - Returns: the last idle fraction seen.
    static func waitForIdle(threads: Int, maximumSeconds: Double) -> Double {
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let needed = min(0.9, (Double(threads) + 0.6) / cores)
        let start = wallNow()
        while true {
            let idle = idleFraction(over: 0.5)
            if idle >= needed || wallNow() - start > maximumSeconds { return idle }
        }
    }
}

// MARK: - Report helpers

/// `value` with `digits` decimals.
func format(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }

/// `text` padded with spaces to `width` columns (on the left with `left`, for numbers).
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}

/// Keeps the optimizer from dropping a computation whose result a benchmark does not read.
@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }
