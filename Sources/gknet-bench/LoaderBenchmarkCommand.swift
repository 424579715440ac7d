// gknet-bench loader: decode + augment (random resized crop + flip) of training batches, without
// prefetch, in ms per batch -- to compare with the train-step time the loader must hide.
//   gknet-bench loader --dataset DIR [--threads T] [--batch 16] [--size 256] [--batches 8]
import ArgumentParser
import Dispatch
import Foundation
import GKNetDatasets
import GKNetTensorCore

struct LoaderBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader", abstract: "Decode + augment training batches (random resized crop + flip): ms per batch."
    )

    @Option(help: "An iHarmony4-layout folder, e.g. data/HGCompris.")
    var dataset: String

    @Option(help: "Kernel threads (default: \(RuntimeSettings.Variable.threads.rawValue) or all cores).")
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
        let timing = try LoaderBenchmark.measure(
            datasetRoot: URL(fileURLWithPath: dataset), batchSize: batch, size: size, batches: batches)
        print("gknet-bench loader: \(timing)")
        print(
            String(
                format: "bench-loader: ms_per_batch=%.1f batch=%d size=%d threads=%d", timing.millisecondsPerBatch,
                timing.batchSize, size, Threading.count))
    }
}

/// Timing of the data pipeline.
struct LoaderTiming: Sendable, Codable, CustomStringConvertible {
    var batches: Int
    var batchSize: Int
    var width: Int
    var height: Int
    var threads: Int
    /// Wall time per batch, decode + augment + stack, no overlap with anything else.
    var millisecondsPerBatch: Double

    var samplesPerSecond: Double { Double(batchSize) * 1000 / millisecondsPerBatch }

    var description: String {
        String(
            format: "loader: %.1f ms per batch of %d at %dx%d (%.0f samples/s, %d threads, %d batches)",
            millisecondsPerBatch, batchSize, width, height, samplesPerSecond, threads, batches)
    }
}

enum LoaderBenchmark {
    /// Loads `batches` training batches (random resized crop + flip to `size` x `size`) from the
    /// dataset at `root` without prefetch, after one warm-up batch, and reports the mean time.
    /// The dataset is cycled if it has fewer samples than needed.
    static func measure(
        datasetRoot root: URL, split: DatasetSplit = .train, batchSize: Int = 16, size: Int = 256,
        batches: Int = 8, seed: UInt64 = 0
    ) throws -> LoaderTiming {
        let dataset = try HarmonizationDataset(root: root, split: split)
        guard dataset.count > 0 else { throw DatasetError("\(root.path): the \(split.rawValue) split is empty") }
        let options = LoaderOptions(
            batchSize: min(batchSize, dataset.count), seed: seed, dropLast: true, prefetch: false)
        let loader = BatchLoader(
            dataset: dataset, transform: TrainingAugmentation(width: size, height: size), options: options)
        _ = try loader.next()
        let elapsed = try Measure.seconds { for _ in 0..<batches { _ = try loader.next() } } * 1e3
        return LoaderTiming(
            batches: batches, batchSize: options.batchSize, width: size, height: size,
            threads: min(Threading.count, options.batchSize), millisecondsPerBatch: elapsed / Double(max(batches, 1)))
    }
}
