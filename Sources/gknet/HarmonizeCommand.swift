// `gknet harmonize`: one composite and mask, or every composite of a dataset split, at full
// resolution. A thin layer over GKNetInference.HarmonizeJob (the library entry point, which runs
// `Harmonizer.harmonize`) and, for a dataset split, Evaluation's `HarmonizeJob.runBatch`.
import ArgumentParser
import Foundation
import GKNetDataParallel
import GKNetDatasets
import GKNetEvaluation
import GKNetImageCodec
import GKNetInference

extension GKNetCommand {
    struct Harmonize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Harmonize a composite with its mask, at the composite's own resolution.",
            discussion: """
                The network runs at 256x256; its colour change is carried to the composite's resolution \
                (default: local affine colour transforms fitted on a grid), so the composite's detail is kept \
                and pixels where the mask is 0 are returned unchanged.

                Mask: white = the region to harmonize, black = background; grey values are soft edges used \
                as blending weights. Colour masks use the brightest channel, masks with transparency their \
                alpha channel. The mask must have the composite's size unless --resize-mask.
                Composite: PNG or JPEG, gray, RGB or with alpha (kept in a PNG output), 8 or 16 bits (the \
                output keeps the depth).

                Batch: --dataset DIR [--split test] --output-dir DIR writes <composite base name>.png for \
                every composite of the split, continues past bad samples, lists them at the end and then \
                exits non-zero.
                """)

        @Argument(help: "The composite image (PNG or JPEG).")
        var composite: String?

        @Argument(help: "The mask (white = region to harmonize), same size as the composite.")
        var mask: String?

        @Option(
            name: [.short, .customLong("output")],
            help: "Output image (.png; default: <composite stem>_harmonized.png next to the composite).")
        var output: String?

        @Option(help: "A GKNet checkpoint (.safetensors) from `gknet train`; default: the bundled model.")
        var model: String?

        @Option(help: "Also write a side-by-side sheet (composite, mask outline, result) to this PNG.")
        var comparison: String?

        @Option(help: "A real (target) image to show on the comparison sheet.")
        var target: String?

        @OptionGroup var fullResolution: FullResolutionOptions

        @Flag(
            name: .customLong("resize-mask"),
            help: "Resize a mask whose size differs from the composite's (otherwise an error).")
        var resizeMask = false

        @Option(name: .customLong("maximum-pixels"), help: "Largest image accepted, in pixels (width x height).")
        var maximumPixels: Int = 100_000_000

        @Option(help: "Batch mode: an iHarmony4 root or one subset folder.")
        var dataset: String?

        @Option(help: "Batch mode: which list, train or test.")
        var split: String = "test"

        @Option(
            name: .customLong("output-dir"),
            help: "Batch mode: folder for <composite base name>.png (created if needed).")
        var outputDir: String?

        @Option(
            name: .customLong("comparison-dir"),
            help: "Batch mode: also write one comparison sheet per composite (with its target) here.")
        var comparisonDir: String?

        @Option(help: "Batch mode: only the first N composites of the list (0 = all).")
        var limit: Int = 0

        @Option(
            help: ArgumentHelp(
                "Batch mode: process share i of n of the list (i/n, 0-based: item k goes to share k mod n).",
                discussion: "Under mpirun the share is the process's rank/size unless --shard is given."))
        var shard: String?

        @Flag(help: "Print the time of each stage.")
        var timings = false

        func validate() throws {
            guard maximumPixels > 0 else { throw ValidationError("--maximum-pixels must be positive") }
            if dataset != nil {
                guard composite == nil, mask == nil else {
                    throw ValidationError("give either COMPOSITE MASK or --dataset, not both")
                }
                guard outputDir != nil else { throw ValidationError("--dataset needs --output-dir") }
                guard output == nil, comparison == nil, target == nil else {
                    throw ValidationError(
                        "--output, --comparison and --target are for one image; batch mode uses --output-dir and "
                            + "--comparison-dir"
                    )
                }
                guard DatasetSplit(rawValue: split) != nil else {
                    throw ValidationError("--split must be train or test")
                }
                guard limit >= 0 else { throw ValidationError("--limit must be >= 0") }
                if let shard {
                    do { _ = try DatasetShard(parsing: shard) } catch { throw ValidationError("--shard: \(error)") }
                }
            } else {
                guard composite != nil, mask != nil else {
                    throw ValidationError("give COMPOSITE and MASK (or --dataset DIR --output-dir DIR)")
                }
                guard outputDir == nil, comparisonDir == nil, shard == nil else {
                    throw ValidationError("--output-dir, --comparison-dir and --shard need --dataset")
                }
            }
        }

        func run() throws {
            var options = HarmonizeOptions()
            options.resizeMask = resizeMask
            options.limits.maximumPixels = maximumPixels
            if dataset != nil { return try runBatch(options: options) }

            let request = HarmonizeRequest(
                composite: URL(fileURLWithPath: composite!), mask: URL(fileURLWithPath: mask!),
                output: output.map { URL(fileURLWithPath: $0) },
                comparison: comparison.map { URL(fileURLWithPath: $0) },
                target: target.map { URL(fileURLWithPath: $0) })
            // cheap checks first: paths, then the images, then the model
            try HarmonizeJob.checkPaths(request)
            var clock = StageClock()
            let input = try HarmonizeJob.readInput(composite: request.composite, mask: request.mask, options: options)
            clock.lap("read")
            let harmonizer = try loadHarmonizer()
            clock.lap("load model")
            let report = try HarmonizeJob.finish(
                request, input: input, harmonizer: harmonizer, options: options, clock: &clock)
            for warning in report.warnings { printError("warning: \(warning)") }
            print(
                "wrote \(report.output.path) (\(report.width)x\(report.height))"
                    + (report.comparison.map { " and \($0.path)" } ?? ""))
            if let kept = report.changeKept {
                print(
                    kept == 0
                        ? "the model's change gate kept none of the change: the composite looks harmonious enough "
                            + "or the change is unreliable (--no-change-gate shows the network's change)"
                        : "kept \(Int((100 * kept).rounded())) % of the network's change (change gate / scale)")
            }
            if timings { printTimings(report.timings) }
        }

        func loadHarmonizer() throws -> Harmonizer {
            try fullResolution.harmonizer(modelPath: model)
        }

        func runBatch(options: HarmonizeOptions) throws {
            let data = try HarmonizationDataset(
                root: URL(fileURLWithPath: dataset!), split: DatasetSplit(rawValue: split)!)
            let share: DatasetShard
            if let shard {
                share = try DatasetShard(parsing: shard)
            } else if Communicator.isLaunchedByMPI {
                let world = Communicator.world
                defer { world.finish() }  // the ranks share no work: leave the job at once
                share = try DatasetShard(index: world.rank, count: world.size)
            } else {
                share = .whole
            }
            let harmonizer = try loadHarmonizer()
            let progress = ProgressLine(label: share == .whole ? "harmonizing" : "harmonizing shard \(share)")
            let summary = try HarmonizeJob.runBatch(
                dataset: data, outputDirectory: URL(fileURLWithPath: outputDir!),
                comparisonDirectory: comparisonDir.map { URL(fileURLWithPath: $0) },
                harmonizer: harmonizer, options: options, limit: limit, shard: share,
                warn: { printError("warning: \($0)") },
                progress: { done, total, elapsed, _ in progress.update(done: done, total: total, elapsed: elapsed) })
            print(
                String(
                    format: "wrote %d of %d images to %@ in %.1f s", summary.written, summary.total, outputDir!,
                    summary.seconds) + (share == .whole ? "" : " (shard \(share))"))
            guard summary.failures.isEmpty else {
                printError("\(summary.failures.count) of \(summary.total) failed:")
                for failure in summary.failures { printError("  \(failure.sample): \(failure.message)") }
                throw ExitCode.failure
            }
        }

        func printTimings(_ laps: [(stage: String, seconds: Double)]) {
            let parts = laps.map { String(format: "%@ %.3f s", $0.stage, $0.seconds) }
            printError(
                "timings: " + parts.joined(separator: ", ")
                    + String(format: "; total %.3f s", laps.map(\.seconds).reduce(0, +)))
        }
    }
}

/// One line on stderr.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
