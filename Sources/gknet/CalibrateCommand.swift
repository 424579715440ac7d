// `gknet calibrate --model M --dataset TUNE [-o OUT]`: fits the shrink of the model's predicted change
// toward the identity on a tuning split and stores it in a copy of the model file.
import ArgumentParser
import Foundation
import GKNetDatasets
import GKNetEvaluation
import GKNetInference
import GKNetTensorCore

extension GKNetCommand {
    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fit how much of the predicted change to keep (lowest mean fMSE on a tuning split).",
            discussion: """
                Scores result = composite + s * (prediction - composite) for s = 0, 1/steps, ..., 1 on \
                the tuning images (protocol of gknet evaluate: 256x256, bilinear) and prints, per s, the \
                mean fMSE, its ratio to the composite's, the PSNR gain, the images made worse, the median \
                per-image fMSE change and the ratio on composites below 300 fMSE. With --output, writes \
                a copy of the model file whose metadata holds the s with the lowest mean fMSE (\
                gknet.change_scale, beside gknet.config); every harmonize path applies it (gknet \
                harmonize, evaluate, serve). Choose s on a tuning split, never on the test split.
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

        @Option(help: "Use only the first N images of the list (0 = all).")
        var limit: Int = 0

        @Option(help: "Write every score as JSON to this file.")
        var json: String?

        func validate() throws {
            guard DatasetSplit(rawValue: split) != nil else { throw ValidationError("--split must be train or test") }
            guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000") }
            guard (16...8192).contains(resolution) else { throw ValidationError("--resolution must be in 16...8192") }
            guard limit >= 0 else { throw ValidationError("--limit must be >= 0") }
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
            if let json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                encoder.nonConformingFloatEncodingStrategy = .convertToString(
                    positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                try AtomicFile.write(try encoder.encode(calibration), to: URL(fileURLWithPath: json))
            }
            if let output {
                var file = try SafeTensorsFile(contentsOf: try ModelLoading.resolve(path: model))
                file.metadata[Harmonizer.changeScaleKey] = "\(calibration.best.scale)"
                file.metadata[Harmonizer.changeScaleFitKey] = calibration.fitDescription
                try file.write(to: URL(fileURLWithPath: output))
                print("wrote \(output) with \(Harmonizer.changeScaleKey) = \(calibration.best.scale)")
            }
        }
    }
}
