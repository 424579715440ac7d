// The loader benchmark (wired into gknet-bench): decode + augment batches and time them.
import Dispatch
import Foundation
import ImageCodec
import TensorCore

/// Timing of the data pipeline.
public struct LoaderTiming: Sendable, Codable, CustomStringConvertible {
    public var batches: Int
    public var batchSize: Int
    public var width: Int
    public var height: Int
    public var threads: Int
    /// Wall time per batch, decode + augment + stack, no overlap with anything else.
    public var millisecondsPerBatch: Double

    public var samplesPerSecond: Double { Double(batchSize) * 1000 / millisecondsPerBatch }

    public var description: String {
        String(format: "loader: %.1f ms per batch of %d at %dx%d (%.0f samples/s, %d threads, %d batches)",
               millisecondsPerBatch, batchSize, width, height, samplesPerSecond, threads, batches)
    }
}

public enum LoaderBenchmark {
    /// Loads `batches` training batches (random resized crop + flip to `size` x `size`) from the
    /// dataset at `root` without prefetch, after one warm-up batch, and reports the mean time.
    /// The dataset is cycled if it has fewer samples than needed.
    public static func measure(
        datasetRoot root: URL, split: DatasetSplit = .train, batchSize: Int = 16, size: Int = 256,
        batches: Int = 8, seed: UInt64 = 0
    ) throws -> LoaderTiming {
        let dataset = try HarmonizationDataset(root: root, split: split)
        guard dataset.count > 0 else { throw DatasetError("\(root.path): the \(split.rawValue) split is empty") }
        let options = LoaderOptions(batchSize: min(batchSize, dataset.count), seed: seed, dropLast: true, prefetch: false)
        let loader = BatchLoader(dataset: dataset, transform: TrainingAugmentation(width: size, height: size), options: options)
        _ = try loader.next()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<batches { _ = try loader.next() }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return LoaderTiming(
            batches: batches, batchSize: options.batchSize, width: size, height: size,
            threads: min(TensorCore.Threading.count, options.batchSize), millisecondsPerBatch: elapsed / Double(max(batches, 1)))
    }
}
