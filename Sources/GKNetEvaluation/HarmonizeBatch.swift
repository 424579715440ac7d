import Dispatch
import Foundation
// Batch mode of `gknet harmonize`: every composite of a dataset split, written as
// `<output dir>/<composite base name>.png` at the composite's size. The model is loaded once by
// the caller; every image goes through `HarmonizeJob.finish` (`Harmonizer.harmonize`, the one
// path, as for a single image); the next sample is decoded on a background thread while the network works on the
// current one; a bad sample is reported and skipped, and the failures are listed at the end.
import GKNetDatasets
import GKNetImageCodec
import GKNetInference
import GKNetTensorCore

/// A sample that could not be harmonized.
public struct BatchFailure: Sendable {
    /// "<subset>/<composite name>".
    public var sample: String
    /// The one-line error.
    public var message: String
}

/// What a batch run did.
public struct BatchSummary: Sendable {
    public var total: Int
    public var written: Int
    public var failures: [BatchFailure]
    public var seconds: Double
}

/// Progress of a batch: samples done (written or failed), total, seconds elapsed, the sample name.
public typealias BatchProgress = (_ done: Int, _ total: Int, _ elapsed: Double, _ sample: String) -> Void

extension HarmonizeJob {
    /// Harmonizes every sample of `dataset` (the first `limit` when limit > 0), or the share
    /// `shard` of them: the union of every shard's output equals the unsharded run's, byte for byte
    /// (a base name that two subsets share goes to the first in list order, whichever shard has it).
    /// - Parameters:
    ///   - outputDirectory: created if missing; receives `<composite base name>.png`.
    ///   - comparisonDirectory: if given (created if missing), a sheet `<base name>.png` per sample with its target.
    ///   - warn: receives notes about how a sample's inputs were read.
    /// - Throws: only when a folder cannot be created; sample problems are returned as failures.
    public static func runBatch(
        dataset: HarmonizationDataset, outputDirectory: URL, comparisonDirectory: URL? = nil, harmonizer: Harmonizer,
        options: HarmonizeOptions = HarmonizeOptions(), limit: Int = 0, shard: DatasetShard = .whole,
        warn: (String) -> Void = { _ in }, progress: BatchProgress? = nil
    ) throws -> BatchSummary {
        for folder in [outputDirectory] + (comparisonDirectory.map { [$0] } ?? []) {
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            } catch {
                throw HarmonizeError("\(folder.path): cannot create the folder (\(error.localizedDescription))")
            }
        }
        let listed = Array(dataset.samples.prefix(limit > 0 ? limit : dataset.count))
        // output file name -> the sample that writes it: the first in list order, over every shard
        var claimed: [String: String] = [:]
        for reference in listed where claimed[outputName(reference)] == nil {
            claimed[outputName(reference)] = label(reference)
        }
        let samples = shard.positions(of: listed.count).map { listed[$0] }
        let start = Date()
        var failures: [BatchFailure] = []
        var written = 0

        let wantsTarget = comparisonDirectory != nil
        func load(_ index: Int) -> PendingResult<(HarmonizeInput, PlanarImage?, [String])> {
            let reference = samples[index]
            return PendingResult {
                let input = try readInput(composite: reference.composite, mask: reference.mask, options: options)
                guard wantsTarget else { return (input, nil, []) }
                do {
                    let target = try ImageFile.readRGB(reference.real, limits: options.limits)
                    guard target.width == input.composite.width, target.height == input.composite.height else {
                        return (
                            input, nil,
                            [
                                "\(reference.real.path): real image is \(target.width)x\(target.height), not the "
                                    + "composite's \(input.composite.width)x\(input.composite.height): left off the "
                                    + "sheet"
                            ]
                        )
                    }
                    return (input, target, [])
                } catch {
                    return (input, nil, ["\(error): left off the sheet"])
                }
            }
        }

        var next = samples.isEmpty ? nil : load(0)
        for (index, reference) in samples.enumerated() {
            let current = next!
            next = index + 1 < samples.count ? load(index + 1) : nil
            let label = label(reference)
            do {
                let fileName = outputName(reference)
                if let owner = claimed[fileName], owner != label {
                    throw HarmonizeError(
                        "\(outputDirectory.appendingPathComponent(fileName).path): already written for \(owner) (same "
                            + "composite base name in two subsets)"
                    )
                }
                let request = HarmonizeRequest(
                    composite: reference.composite, mask: reference.mask,
                    output: outputDirectory.appendingPathComponent(fileName),
                    comparison: comparisonDirectory?.appendingPathComponent(fileName))
                try checkPaths(request)
                try checkWritable(request.output, label: "output", inputs: [reference.real])
                var clock = StageClock()
                let (input, target, notes) = try current.wait()
                clock.lap("read")
                let report = try finish(
                    request, input: input, target: target, harmonizer: harmonizer, options: options, clock: &clock)
                for note in notes + report.warnings { warn("\(label): \(note)") }
                written += 1
            } catch {
                _ = try? current.wait()  // never leave a decode running behind
                failures.append(BatchFailure(sample: label, message: "\(error)"))
            }
            progress?(index + 1, samples.count, Date().timeIntervalSince(start), label)
        }
        return BatchSummary(
            total: samples.count, written: written, failures: failures, seconds: Date().timeIntervalSince(start))
    }
}

/// "<subset>/<composite name>", how a batch names a sample in messages.
private func label(_ reference: SampleReference) -> String { "\(reference.subset)/\(reference.name)" }

/// The batch output's file name of a sample: its composite's base name, as PNG.
private func outputName(_ reference: SampleReference) -> String {
    URL(fileURLWithPath: reference.name).deletingPathExtension().lastPathComponent + ".png"
}
