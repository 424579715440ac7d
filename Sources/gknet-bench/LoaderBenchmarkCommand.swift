// gknet-bench loader: decode + augment (random resized crop + flip) of training batches, without
// prefetch, in ms per batch -- to compare with the train-step time the loader must hide.
//   gknet-bench loader --dataset DIR [--threads T] [--batch 16] [--size 256] [--batches 8]
import ArgumentParser
import Foundation
import Harmonization
import TensorCore

struct LoaderBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader", abstract: "Decode + augment training batches (random resized crop + flip): ms per batch.")

    @Option(help: "An iHarmony4-layout folder, e.g. data/HGCompris.")
    var dataset: String

    @Option(help: "Kernel threads (default: GKNET_THREADS or all cores).")
    var threads: Int = Threading.count

    @Option(help: "Samples per batch.")
    var batch: Int = 16

    @Option(help: "Crop size in pixels.")
    var size: Int = 256

    @Option(help: "Timed batches (after one warm-up batch).")
    var batches: Int = 8

    func validate() throws {
        guard threads >= 1, batch >= 1, size >= 1, batches >= 1 else {
            throw ValidationError("--threads, --batch, --size and --batches must be positive")
        }
    }

    func run() throws {
        Threading.configure(threads: threads)
        let timing = try LoaderBenchmark.measure(datasetRoot: URL(fileURLWithPath: dataset), batchSize: batch, size: size, batches: batches)
        print("gknet-bench loader: \(timing)")
        print(String(format: "bench-loader: ms_per_batch=%.1f batch=%d size=%d threads=%d", timing.millisecondsPerBatch, timing.batchSize, size, Threading.count))
    }
}
