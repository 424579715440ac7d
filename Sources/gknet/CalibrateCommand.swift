// `gknet calibrate --model M --dataset TUNE [-o OUT]`: fits the shrink of the model's predicted change
// toward the identity on a tuning split and stores it in a copy of the model file.
// `gknet calibrate --gate --fit-dataset TRAIN --model M --dataset TUNE [-o OUT]`: fits the per-image
// change gate on TRAIN, chooses its threshold on TUNE and stores it the same way.
import ArgumentParser
import Foundation
import GKNetDatasets
import GKNetEvaluation
import GKNetInference
import GKNetTensorCore

extension GKNetCommand {
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fit how much of the predicted change to keep (a scale, or a per-image gate).",
            discussion: """
                Scores result = composite + s * (prediction - composite) for s = 0, 1/steps, ..., 1 on \
                the tuning images (protocol of gknet evaluate: 256x256, bilinear) and prints, per s, the \
                mean fMSE, its ratio to the composite's, the PSNR gain, the images made worse, the median \
                per-image fMSE change and the ratio on composites below 300 fMSE. With --output, writes \
                a copy of the model file whose metadata holds the s with the lowest mean fMSE (\
                gknet.change_scale, beside gknet.config); every harmonize path applies it (gknet \
                harmonize, evaluate, serve). Choose s on a tuning split, never on the test split.

                With --gate: fits the per-image change gate instead (docs/results.md, "A per-image \
                change gate"): a logistic model on colour statistics of the composite, mask and \
                prediction that gives each image an openness g, and keeps none of the change when g is \
                below a threshold; above it, a share g of the change (--keep share) or all of it (--keep \
                whole). Its weights are fitted on --fit-dataset (a training split: images the tuning and \
                test splits do not share), the threshold is chosen on --dataset: the lowest mean fMSE \
                among thresholds 0, 1/steps, ..., 1 that leave at most --max-worse of the images worse \
                than their composite and, with --max-near-identity-ratio R, the composites below 300 \
                fMSE at most R times their own fMSE on average. Stored as gknet.change_gate; \
                --no-change-gate in gknet harmonize and evaluate turns it off.
                """)

        @Option(help: "The model file (.safetensors from gknet train or gknet export).")
        var model: String

        @Option(help: "The tuning dataset (an iHarmony4 root or one subset folder).")
        var dataset: String

        @Option(help: "Which list to use: train or test.")
        var split: String = "test"

        @Option(name: [.customShort("o"), .long], help: "Write the model with the fitted s here (atomically).")
        var output: String?

        @Option(help: "Grid of s: 0, 1/steps, ..., 1.")
        var steps: Int = 20

        @Option(help: "Evaluation size N (N x N).")
        var resolution: Int = 256

        @Option(help: "Use only the first N images of the list (0 = all; with --gate, of both lists).")
        var limit: Int = 0

        @Option(help: "Write every score as JSON to this file.")
        var json: String?

        @Flag(help: "Fit the per-image change gate instead of one scale.")
        var gate = false

        @Option(help: "With --gate: the dataset the gate's weights are fitted on (a training split).")
        var fitDataset: String?

        @Option(help: "With --gate: which list of --fit-dataset to use: train or test.")
        var fitSplit: String = "train"

        @Option(help: "With --gate: the largest share of tuning images made worse that a threshold may leave.")
        var maxWorse: Double = 0.2

        @Option(
            help: """
                With --gate: the largest ratio of mean fMSE to the composite's that a threshold may \
                leave on the tuning composites below 300 fMSE (1 = not made worse on average; default: \
                no limit).
                """)
        var maxNearIdentityRatio: Double?

        @Option(help: "With --gate: what an open gate keeps: share (g of the change) or whole (all of it).")
        var keep: String = ChangeGate.Keep.share.rawValue

        @Option(help: "With --gate: the floor added to each composite's fMSE in the fit's relative loss.")
        var lossFloor: Double = ChangeGateFitSettings().lossFloor

        @Option(help: "With --gate: the fit's L2 weight on the logistic weights.")
        var weightDecay: Double = ChangeGateFitSettings().weightDecay

        func validate() throws {
            guard DatasetSplit(rawValue: split) != nil else { throw ValidationError("--split must be train or test") }
            guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000") }
            guard (16...8192).contains(resolution) else { throw ValidationError("--resolution must be in 16...8192") }
            guard limit >= 0 else { throw ValidationError("--limit must be >= 0") }
            guard DatasetSplit(rawValue: fitSplit) != nil else {
                throw ValidationError("--fit-split must be train or test")
            }
            guard (0...1).contains(maxWorse) else { throw ValidationError("--max-worse must be in 0...1") }
            if let maxNearIdentityRatio, !(maxNearIdentityRatio.isFinite && maxNearIdentityRatio >= 0) {
                throw ValidationError("--max-near-identity-ratio must be a number >= 0")
            }
            guard ChangeGate.Keep(rawValue: keep) != nil else { throw ValidationError("--keep must be share or whole") }
            guard lossFloor.isFinite && lossFloor > 0 else { throw ValidationError("--loss-floor must be > 0") }
            guard weightDecay.isFinite && weightDecay >= 0 else { throw ValidationError("--weight-decay must be >= 0") }
            if !gate {
                let gateOnly = [
                    (maxNearIdentityRatio != nil, "--max-near-identity-ratio"),
                    (keep != ChangeGate.Keep.share.rawValue, "--keep"),
                    (lossFloor != ChangeGateFitSettings().lossFloor, "--loss-floor"),
                    (weightDecay != ChangeGateFitSettings().weightDecay, "--weight-decay"),
                ]
                if let (_, name) = gateOnly.first(where: { $0.0 }) {
                    throw ValidationError("\(name) is only used with --gate")
                }
            }
            if gate && fitDataset == nil { throw ValidationError("--gate needs --fit-dataset (a training split)") }
            if !gate && fitDataset != nil { throw ValidationError("--fit-dataset is only used with --gate") }
            if let output {
                guard URL(fileURLWithPath: output).pathExtension == "safetensors" else {
                    throw ValidationError("--output must be a .safetensors file")
                }
                guard
                    URL(fileURLWithPath: output).standardizedFileURL != URL(fileURLWithPath: model).standardizedFileURL
                else {
                    throw ValidationError("--output must differ from --model (the original stays as it is)")
                }
            }
        }

        func run() throws {
            let data = try HarmonizationDataset(
                root: URL(fileURLWithPath: dataset), split: DatasetSplit(rawValue: split)!)
            let harmonizer = try ModelLoading.harmonizer(path: model)
            var options = EvaluationOptions()
            options.resolution = .fixed(resolution)
            options.limit = limit
            if gate {
                try runGate(harmonizer: harmonizer, tuning: data, options: options)
                return
            }
            if harmonizer.changeScale != 1 {
                print("the model already stores s = \(harmonizer.changeScale); fitting again from the network's output")
            }
            let progress = ProgressLine(label: "calibrating")
            let calibration = try calibrateChangeScale(
                dataset: data, harmonizer: harmonizer, scales: changeScaleGrid(steps: steps), options: options
            ) { done, total, elapsed in
                progress.update(done: done, total: total, elapsed: elapsed)
            }
            print(calibration.table())
            print("lowest mean fMSE at s = \(calibration.best.scale): \(calibration.fitDescription)")
            if let json { try writeReportJSON(calibration, to: json) }
            if let output {
                var file = try SafeTensorsFile(contentsOf: try ModelLoading.resolve(path: model))
                file.metadata[Harmonizer.changeScaleKey] = "\(calibration.best.scale)"
                file.metadata[Harmonizer.changeScaleFitKey] = calibration.fitDescription
                try file.write(to: URL(fileURLWithPath: output))
                print("wrote \(output) with \(Harmonizer.changeScaleKey) = \(calibration.best.scale)")
            }
        }

        /// --gate: fit on --fit-dataset, choose the threshold on the tuning split, write the model.
        private func runGate(harmonizer: Harmonizer, tuning: HarmonizationDataset, options: EvaluationOptions) throws {
            guard resolution == harmonizer.networkSize else {
                throw ValidationError(
                    "--gate works at the network's input size: pass --resolution \(harmonizer.networkSize)")
            }
            let fit = try HarmonizationDataset(
                root: URL(fileURLWithPath: fitDataset!), split: DatasetSplit(rawValue: fitSplit)!)
            if harmonizer.changeGate != nil || harmonizer.changeScale != 1 {
                print("the model already stores a change gate or scale; fitting again from the network's output")
            }
            let fitLine = ProgressLine(label: "gate: fit images")
            let tuningLine = ProgressLine(label: "gate: tuning images")
            var settings = ChangeGateFitSettings()
            settings.lossFloor = lossFloor
            settings.weightDecay = weightDecay
            let calibration = try calibrateChangeGate(
                fit: fit, tuning: tuning, harmonizer: harmonizer,
                thresholds: changeGateThresholdGrid(steps: steps),
                maxWorseShare: maxWorse, maxNearIdentityRatio: maxNearIdentityRatio,
                keep: ChangeGate.Keep(rawValue: keep)!, settings: settings, options: options,
                fitProgress: { fitLine.update(done: $0, total: $1, elapsed: $2) },
                tuningProgress: { tuningLine.update(done: $0, total: $1, elapsed: $2) })
            print(calibration.table())
            print("chosen threshold \(calibration.best.threshold): \(calibration.fitDescription)")
            let easy = calibration.ungated.impactByDifficulty[CompositeDifficultyBand.below300.rawValue]?.count ?? 0
            if let note = nearIdentitySampleNote(compositesBelow300: easy, maxNearIdentityRatio: maxNearIdentityRatio) {
                print(note)
            }
            if let json { try writeReportJSON(calibration, to: json) }
            if let output {
                var file = try SafeTensorsFile(contentsOf: try ModelLoading.resolve(path: model))
                // the gate was fitted to the network's own output: a stored scale would change what it sees
                file.metadata[Harmonizer.changeScaleKey] = nil
                file.metadata[Harmonizer.changeScaleFitKey] = nil
                file.metadata[ChangeGate.metadataKey] = try calibration.gate.metadataValue()
                file.metadata[ChangeGate.fitKey] = calibration.fitDescription
                try file.write(to: URL(fileURLWithPath: output))
                print("wrote \(output) with \(ChangeGate.metadataKey) (threshold \(calibration.gate.threshold))")
            }
        }
    }
}
