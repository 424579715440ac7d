// The built `gknet-bench` executable: the loader benchmark runs on the test dataset.
import Foundation
import GKNetTestSupport
import Testing

private let benchExecutable = builtExecutable("gknet-bench")

@Suite(
    .enabled(
        if: runsExecutables(benchExecutable),
        "the gknet-bench executable is not built: run `swift build` (or `make test`) first")
)
struct BenchmarkCLITests {
    @Test func loaderBenchmarkRuns() throws {
        let dataset = Fixtures.url("datasets/ihd")
        let result = try run(
            try benchExecutable.require(),
            ["loader", "--dataset", dataset.path, "--batch", "2", "--size", "16", "--batches", "2"])
        #expect(result.status == 0, "exit \(result.status): \(result.standardError)")
        #expect(result.standardOutput.contains("bench-loader: ms_per_batch="), "\(result.standardOutput)")
        #expect(result.standardOutput.contains(" batch=2 size=16 "), "\(result.standardOutput)")
    }
}
