// Waiting for child processes without holding a thread of Swift's cooperative pool. The test
// runner runs every test on that pool, which is as wide as the machine has cores: a test blocked
// for a minute in `waitUntilExit` or `usleep` (a training run, an mpirun job) starved the async
// tests beside it on a 2-core machine, whose own 10 s time limits then fired (the serve tests).
import Foundation
import Testing

extension Process {
    /// Waits until the process exits or `seconds` pass, sleeping between checks.
    /// - Returns: whether it exited.
    @discardableResult
    func exits(within seconds: Double = .infinity) async throws -> Bool {
        let start = Date()
        while isRunning {
            if Date().timeIntervalSince(start) >= seconds { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        waitUntilExit()  // it has exited: this only collects its status
        return true
    }
}

/// Sleeps `milliseconds` without holding a thread.
func pause(milliseconds: Int) async throws {
    try await Task.sleep(for: .milliseconds(milliseconds))
}

/// The suites that start training jobs (`KillResumeTests`, `DataParallelTests`: about a minute of
/// both cores each) run one after the other rather than side by side, so that the rest of the
/// suite, which runs in parallel with them, keeps some CPU (the serve tests have time limits).
@Suite(.serialized) enum TrainingJobs {}
