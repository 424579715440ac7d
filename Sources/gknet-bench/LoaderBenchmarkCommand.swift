// gknet-bench loader: decode + augment (random resized crop + flip) of training batches, without
// prefetch, in ms per batch -- to compare with the train-step time the loader must hide. With
// --photos and --masks it times fresh composites instead (decode, crop, synthesis), as `gknet
// train` makes them with a `synthesis` section at its defaults.
//   gknet-bench loader --dataset DIR [--threads T] [--batch 16] [--size 256] [--batches 8]
//   gknet-bench loader --photos DIR --masks DIR [--exclude LIST] [--cpu-time] ...
import ArgumentParser
import Dispatch
import Foundation
import GKNetDatasets
import GKNetSynthesis
import GKNetTensorCore
import GKNetTraining

struct LoaderBenchmarkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loader", abstract: "Decode + augment training batches (random resized crop + flip): ms per batch."
    )

    @Option(help: "An iHarmony4-layout folder, e.g. data/HGCompris.")
    var dataset: String?

    @Option(help: "Fresh composites instead: a folder of real photos (with --masks), e.g. data/photos.")
    var photos: String?

    @Option(help: "The object masks of --photos, e.g. data/masks.")
    var masks: String?

    @Option(help: "Fresh composites: a hold-out list of photos never used, e.g. Scripts/holdout_folders.txt.")
    var exclude: String?

    @Option(
        help:
            ArgumentHelp(
                "Fresh composites: loaded photos kept in memory, in MiB (as synthesis.cache_megabytes; "
                    + "0: decode every read).")
    )
    var cacheMegabytes = FreshCompositeSettings(photos: "", masks: "").cacheMegabytes

    @Flag(help: "Report the process's CPU time (all threads) instead of the wall clock.")
    var cpuTime = false

    @Flag(help: "Print a checksum of every value loaded (the same seed and data must give the same one).")
    var checksum = false

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
        guard cacheMegabytes >= 0 else { throw ValidationError("--cache-megabytes must be 0 or more") }
        guard (dataset == nil) != (photos == nil), (photos == nil) == (masks == nil) else {
            throw ValidationError("pass --dataset, or --photos and --masks")
        }
    }

    func run() throws {
        Threading.configure(threads: threads)
        Measure.usesCPUTime = cpuTime
        let timing: LoaderTiming
        if let photos, let masks {
            var settings = FreshCompositeSettings(photos: photos, masks: masks)
            settings.exclude = exclude
            settings.cacheMegabytes = cacheMegabytes
            timing = try LoaderBenchmark.measureFreshComposites(
                settings: settings, batchSize: batch, size: size, batches: batches, checksum: checksum)
        } else {
            timing = try LoaderBenchmark.measure(
                datasetRoot: URL(fileURLWithPath: dataset ?? ""), batchSize: batch, size: size, batches: batches,
                checksum: checksum)
        }
        print("gknet-bench loader: \(timing)\(cpuTime ? " (process CPU time)" : "")")
        print(
            String(
                format: "bench-loader: ms_per_batch=%.1f batch=%d size=%d threads=%d", timing.millisecondsPerBatch,
                timing.batchSize, size, Threading.count)
                + (timing.checksum.map { String(format: " checksum=%016llx", $0) } ?? ""))
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
    /// FNV-1a of the bit patterns of every composite, mask and target value loaded (when asked for).
    var checksum: UInt64?

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
        batches: Int = 8, seed: UInt64 = 0, checksum: Bool = false
    ) throws -> LoaderTiming {
        let dataset = try HarmonizationDataset(root: root, split: split)
        guard dataset.count > 0 else { throw DatasetError("\(root.path): the \(split.rawValue) split is empty") }
        let options = LoaderOptions(
            batchSize: min(batchSize, dataset.count), seed: seed, dropLast: true, prefetch: false)
        let loader = BatchLoader(
            dataset: dataset, transform: TrainingAugmentation(width: size, height: size), options: options)
        return try time(loader, batchSize: options.batchSize, size: size, batches: batches, checksum: checksum)
    }

    /// The same for fresh composites of `settings`' photos (decode, random resized crop, synthesis).
    static func measureFreshComposites(
        settings: FreshCompositeSettings, batchSize: Int, size: Int, batches: Int, seed: UInt64 = 0,
        checksum: Bool = false
    ) throws -> LoaderTiming {
        let photos = try PhotoCollection(settings: settings)
        let transform = FreshCompositeTransform(
            settings: settings, photos: photos, crop: TrainingAugmentation(width: size, height: size))
        let options = LoaderOptions(
            batchSize: min(batchSize, photos.count), seed: seed, shuffle: true, dropLast: true, epochs: nil,
            prefetch: false)
        let loader = BatchLoader(dataset: photos, transform: transform, options: options)
        return try time(loader, batchSize: options.batchSize, size: size, batches: batches, checksum: checksum)
    }

    /// Mean time of `batches` batches of `loader` after one warm-up batch (the checksum, computed
    /// outside the timing, covers all of them).
    static func time(_ loader: BatchLoader, batchSize: Int, size: Int, batches: Int, checksum: Bool) throws
        -> LoaderTiming
    {
        func next() throws -> Batch {
            guard let batch = try loader.next() else { throw BenchmarkError("the loader ran out of batches") }
            return batch
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func add(_ batch: Batch) {
            guard checksum else { return }
            for tensor in [batch.composites, batch.masks, batch.targets] {
                for value in tensor.data { hash = (hash ^ UInt64(value.bitPattern)) &* 0x0000_0100_0000_01b3 }
            }
        }
        add(try next())
        var elapsed = 0.0
        for _ in 0..<batches {
            let start = Measure.now()
            let batch = try next()
            elapsed += (Measure.now() - start) * 1e3
            add(batch)
        }
        return LoaderTiming(
            batches: batches, batchSize: batchSize, width: size, height: size,
            threads: min(Threading.count, batchSize), millisecondsPerBatch: elapsed / Double(max(batches, 1)),
            checksum: checksum ? hash : nil)
    }
}
