// `gknet synthesize`: photos + masks -> an iHarmony4-layout training subset.
import ArgumentParser
import Foundation
import GKNetImageCodec
import GKNetSynthesis

extension GKNetCommand {
    struct Synthesize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an iHarmony4-layout subset of synthetic composites from photos and masks.",
            discussion: """
                For every photo under --photos that has a mask at the same relative path under --masks \
                (any of .png, .jpg, .jpeg), writes the photo to real_images/<id>.jpg, its binary mask to \
                masks/<id>_1.png and K composites to composite_images/<id>_1_<k>.jpg whose foreground \
                was recoloured (Reinhard Lab transfer, photo adjustments, or a time-of-day tone curve), \
                plus <NAME>_train.txt, <NAME>_test.txt, synthesis.json and difficulty.tsv. With \
                --difficulty realistic (the default) each composite's fMSE against the real image is \
                drawn from a distribution like iHarmony4's test set (near-identity ones included) \
                and the change is scaled toward the identity to meet it; legacy redraws small changes \
                (the sets made before). Photos are split whole: by --holdout (names or source folders) \
                or else by a seeded --test-fraction. The same seed gives the same files.
                """)

        @Option(help: "Folder of photos (searched recursively).")
        var photos: String

        @Option(help: "Folder of masks with the photos' relative paths (white = foreground).")
        var masks: String

        @Option(help: "Output subset folder (created if needed).")
        var output: String

        @Option(name: .customLong("per-photo"), help: "Composites per photo.")
        var perPhoto: Int = 4

        @Option(help: "Seed of every random choice.")
        var seed: UInt64 = 0

        @Option(
            help:
                ArgumentHelp(
                    "Subset name for the list files <NAME>_train.txt and <NAME>_test.txt (default: the output folder's "
                        + "name).")
        )
        var name: String?

        @Option(
            name: .customLong("test-fraction"),
            help: "Share of photos drawn for the test split (ignored with --holdout).")
        var testFraction: Double = 0.1

        @Option(
            help: "File of photo names or source folders (one per line, globs allowed) to hold out as the test split.")
        var holdout: String?

        @Option(help: "Use only the photos matched by this file (same syntax as --holdout).")
        var include: String?

        @Option(help: "Leave out the photos matched by this file (same syntax as --holdout).")
        var exclude: String?

        @Option(
            help: ArgumentHelp(
                "How strong the changes are: realistic (a target fMSE per composite, iHarmony4-like) or legacy "
                    + "(small changes redrawn; reproduces sets made before)."))
        var difficulty: String = DifficultyMode.realistic.rawValue

        @Option(
            name: .customLong("near-identity-share"),
            help: "Realistic difficulty: share of near-identity composites (target fMSE 1-30).")
        var nearIdentityShare: Float = TargetDifficulty().nearIdentityShare

        @Option(
            name: .customLong("median-fmse"), help: "Realistic difficulty: median target fMSE of the other composites.")
        var medianFMSE: Float = TargetDifficulty().medianFMSE

        @Option(
            name: .customLong("fmse-log-deviation"),
            help: "Realistic difficulty: standard deviation of ln(target fMSE).")
        var fmseLogDeviation: Float = TargetDifficulty().logDeviation

        @Option(help: "Format of composites and real images: jpg or png (masks are always png).")
        var format: String = "jpg"

        @Option(help: "JPEG quality 1-100.")
        var quality: Int = 95

        @Option(
            name: .customLong("max-side"), help: "Downscale photos and masks whose long side exceeds this many pixels.")
        var maxSide: Int?

        @Option(name: .customLong("maximum-pixels"), help: "Largest image accepted, in pixels.")
        var maximumPixels: Int = 100_000_000

        func validate() throws {
            guard perPhoto > 0 else { throw ValidationError("--per-photo must be positive") }
            guard (0..<1).contains(testFraction) else { throw ValidationError("--test-fraction must be in [0, 1)") }
            guard ["jpg", "jpeg", "png"].contains(format.lowercased()) else {
                throw ValidationError("--format must be jpg or png")
            }
            guard (1...100).contains(quality) else { throw ValidationError("--quality must be 1-100") }
            guard (0...1).contains(nearIdentityShare) else {
                throw ValidationError("--near-identity-share must be in 0...1")
            }
            guard medianFMSE > 0 && medianFMSE.isFinite else { throw ValidationError("--median-fmse must be positive") }
            guard fmseLogDeviation >= 0 && fmseLogDeviation.isFinite else {
                throw ValidationError("--fmse-log-deviation must be >= 0")
            }
            guard DifficultyMode(rawValue: difficulty) != nil else {
                throw ValidationError(
                    "--difficulty must be one of \(DifficultyMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let maxSide, maxSide < 8 { throw ValidationError("--max-side must be at least 8") }
            if let name, name.isEmpty || name.contains("/") {
                throw ValidationError("--name must be non-empty without '/'")
            }
        }

        func run() throws {
            var options = SynthesisOptions()
            options.perPhoto = perPhoto
            options.seed = seed
            options.name = name ?? URL(fileURLWithPath: output).standardizedFileURL.lastPathComponent
            options.testFraction = testFraction
            options.format = format.lowercased() == "png" ? .png : .jpeg
            options.encoding.quality = quality
            options.limits.maximumPixels = maximumPixels
            options.maximumSide = maxSide
            options.synthesizer.difficulty = DifficultyMode(rawValue: difficulty)!
            options.synthesizer.targetDifficulty.nearIdentityShare = nearIdentityShare
            options.synthesizer.targetDifficulty.medianFMSE = medianFMSE
            options.synthesizer.targetDifficulty.logDeviation = fmseLogDeviation
            if let holdout { options.holdout = try HoldoutList(contentsOf: URL(fileURLWithPath: holdout)) }
            if let include { options.include = try HoldoutList(contentsOf: URL(fileURLWithPath: include)) }
            if let exclude { options.exclude = try HoldoutList(contentsOf: URL(fileURLWithPath: exclude)) }
            let summary = try DatasetSynthesis.run(
                photos: URL(fileURLWithPath: photos), masks: URL(fileURLWithPath: masks),
                output: URL(fileURLWithPath: output),
                options: options, log: { print($0) })
            for (photo, reason) in summary.skipped.sorted(by: { $0.key < $1.key }) {
                print("skipped \(photo): \(reason)")
            }
        }
    }
}
