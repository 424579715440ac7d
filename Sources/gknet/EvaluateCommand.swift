// `gknet evaluate`: the iHarmony4 evaluation protocol over a model, saved predictions or a baseline.
import ArgumentParser
import Foundation
import GKNetDatasets
import GKNetEvaluation
import GKNetModel
import GKNetTensorCore

extension GKNetCommand {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compute MSE, fMSE and PSNR per subset, All and foreground-ratio band, and images made worse.",
            discussion: """
                Metrics follow the iHarmony4 reference (docs/evaluation.md): images resized to 256x256 \
                (bilinear) unless --resolution full, prediction clamped to 0..255 and not quantised, \
                every value averaged over images. Then the result against the composite: images made \
                worse (fMSE above the composite's), the median per-image fMSE change (result minus \
                composite) and, per composite-difficulty band (the composite's fMSE < 300, 300-1000, \
                1000-3000, >= 3000), the ratio of mean fMSE to the composite's and the share made worse. \
                Exactly one prediction source: --model, --predictions or --baseline (with none of them \
                the bundled default model is used).
                """)

        @Option(help: "An iHarmony4 root (all subsets) or one subset folder.")
        var dataset: String

        @Option(help: "Which list to evaluate: train or test.")
        var split: String = "test"

        @Option(help: "A GKNet checkpoint (.safetensors); its configuration travels in the file.")
        var model: String?

        @Option(help: "A folder of saved results named <composite base name>.png.")
        var predictions: String?

        @Option(help: "A classic baseline: identity (the composite) or reinhard (Lab mean/std transfer).")
        var baseline: String?

        @Option(help: "256 (the papers' protocol; any size N works) or full.")
        var resolution: String = "256"

        @OptionGroup var fullResolution: FullResolutionOptions

        @Option(name: .customLong("psnr-peak"), help: "PSNR peak: target-max (iDIH reference) or 255.")
        var psnrPeak: String = "target-max"

        @Option(help: "Evaluate only the first N images of the list (0 = all).")
        var limit: Int = 0

        @Option(help: "Write every number as JSON to this file.")
        var json: String?

        @Option(name: .customLong("per-image"), help: "Write per-image metrics as CSV to this file.")
        var perImage: String?

        func validate() throws {
            let sources = [model != nil, predictions != nil, baseline != nil].filter { $0 }.count
            guard sources <= 1 else { throw ValidationError("give at most one of --model, --predictions, --baseline") }
            guard DatasetSplit(rawValue: split) != nil else { throw ValidationError("--split must be train or test") }
            guard resolution == "full" || (Int(resolution).map { $0 >= 16 && $0 <= 8192 } ?? false) else {
                throw ValidationError("--resolution must be full or a size in 16...8192")
            }
            guard PSNRPeak(rawValue: psnrPeak) != nil else {
                throw ValidationError("--psnr-peak must be target-max or 255")
            }
            if let baseline, ClassicBaseline(rawValue: baseline) == nil {
                throw ValidationError("--baseline must be identity or reinhard")
            }
            guard limit >= 0 else { throw ValidationError("--limit must be >= 0") }
        }

        func run() throws {
            let data = try HarmonizationDataset(
                root: URL(fileURLWithPath: dataset), split: DatasetSplit(rawValue: split)!)
            let source: PredictionSource
            if let predictions {
                source = .directory(URL(fileURLWithPath: predictions))
            } else if let baseline {
                source = .baseline(ClassicBaseline(rawValue: baseline)!)
            } else {
                source = .model(try fullResolution.harmonizer(modelPath: model))
            }
            var options = EvaluationOptions()
            options.resolution = resolution == "full" ? .full : .fixed(Int(resolution)!)
            options.peak = PSNRPeak(rawValue: psnrPeak)!
            options.limit = limit
            let progress = ProgressLine(label: "evaluating")
            let report = try GKNetEvaluation.evaluate(dataset: data, source: source, options: options) {
                done, total, elapsed in
                progress.update(done: done, total: total, elapsed: elapsed)
            }
            var gateNote = ""
            if case .model(let harmonizer) = source, harmonizer.resolvedChangeGate(harmonizer.options) != nil {
                gateNote = ", the model's change gate on (--no-change-gate: the network's output)"
            }
            print("\(report.source), \(report.resolution), PSNR peak \(report.peak.rawValue)\(gateNote)")
            print(report.table())
            print("")
            print(report.impactTable())
            print(report.impactLine)
            if let json { try writeReportJSON(report, to: json) }
            if let perImage {
                try AtomicFile.write(Data(report.csv().utf8), to: URL(fileURLWithPath: perImage))
            }
        }
    }
}
