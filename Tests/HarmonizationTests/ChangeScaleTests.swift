import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

// The fitted shrink of the predicted change (`gknet calibrate`): stored in a model file's metadata,
// applied by every harmonize path, fitted on a tuning split.
@testable import GKNetDatasets
@testable import GKNetEvaluation
@testable import GKNetInference

@Suite struct ChangeScaleTests {
    private func modelFile(_ output: OutputHead, metadata: [String: String], in folder: URL) throws -> URL {
        try TinyModelFiles.write(output, metadata: metadata, in: folder)
    }

    private func inputs(width: Int, height: Int) -> (composite: PlanarImage, mask: PlanarImage) {
        TinyModelFiles.inputs(width: width, height: height)
    }

    private func temporaryFolder() throws -> URL { try TinyModelFiles.temporaryFolder("gknet-scale") }

    @Test(arguments: [
        (OutputHead.residual, FullResolutionMethod.upsampledResidual), (.residual, .localAffine),
        (.affine, .upsampledTransform),
    ])
    func aStoredScaleGivesTheBlendedOutput(output: OutputHead, method: FullResolutionMethod) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = try ModelLoading.harmonizer(path: try modelFile(output, metadata: [:], in: folder).path)
        let stored = try ModelLoading.harmonizer(
            path: try modelFile(output, metadata: [Harmonizer.changeScaleKey: "0.25"], in: folder).path)
        #expect(plain.changeScale == 1 && stored.changeScale == 0.25)
        // at the network size: exactly composite + 0.25 * (prediction - composite)
        let (small, smallMask) = inputs(width: 32, height: 32)
        let whole = try plain.harmonize(composite: small, mask: smallMask)
        let shrunk = try stored.harmonize(composite: small, mask: smallMask)
        #expect(whole != small)
        var worst: Float = 0
        for i in whole.values.indices {
            worst = max(worst, abs(shrunk.values[i] - (small.values[i] + 0.25 * (whole.values[i] - small.values[i]))))
        }
        #expect(worst <= 1e-6, "network size: max difference \(worst)")
        // at full resolution, through the method: the same blend inside the mask wherever the whole
        // change stays inside 0...1 (results are clamped; local-affine refits the transforms to the
        // shrunk prediction, so it agrees to the fit's accuracy), the background untouched
        let options = Harmonizer.Options(method: method)
        let (big, bigMask) = inputs(width: 80, height: 56)
        let wholeBig = try plain.harmonize(composite: big, mask: bigMask, options: options)
        let shrunkBig = try stored.harmonize(composite: big, mask: bigMask, options: options)
        worst = 0
        var moved: Float = 0
        for c in 0..<3 {
            for p in 0..<bigMask.planeSize {
                let i = c * bigMask.planeSize + p
                if bigMask.values[p] == 0 {
                    #expect(shrunkBig.values[i] == big.values[i])
                } else if wholeBig.values[i] > 0.001 && wholeBig.values[i] < 0.999 {
                    let expected = big.values[i] + 0.25 * (wholeBig.values[i] - big.values[i])
                    worst = max(worst, abs(shrunkBig.values[i] - expected))
                    moved = max(moved, abs(wholeBig.values[i] - big.values[i]))
                }
            }
        }
        #expect(moved > 0.01)
        #expect(worst <= (method == .localAffine ? 0.02 * moved : 1e-5), "\(method.rawValue): max difference \(worst)")
    }

    @Test func aBadStoredScaleIsAClearError() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for text in ["1.5", "-0.1", "half"] {
            let url = try modelFile(.residual, metadata: [Harmonizer.changeScaleKey: text], in: folder)
            do {
                _ = try ModelLoading.harmonizer(path: url.path)
                Issue.record("change scale \"\(text)\" was accepted")
            } catch let error as CheckpointError {
                #expect(error.description.contains(url.path) && error.description.contains(Harmonizer.changeScaleKey))
            }
        }
    }

    /// Calibration on a tiny dataset: every scale is scored, s = 0 reproduces the composite (nothing
    /// made worse) and the chosen one has the lowest mean fMSE.
    @Test func calibrationScoresEveryScaleAndPicksTheLowestFMSE() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let harmonizer = try ModelLoading.harmonizer(path: try modelFile(.residual, metadata: [:], in: folder).path)
        let dataset = try HarmonizationDataset(root: Fixtures.url("evaluation/dataset"), split: .test)
        var options = EvaluationOptions()
        options.resolution = .fixed(32)
        let calibration = try calibrateChangeScale(
            dataset: dataset, harmonizer: harmonizer, scales: changeScaleGrid(steps: 4), options: options)
        #expect(calibration.scores.map(\.scale) == [0, 0.25, 0.5, 0.75, 1])
        let identity = calibration.scores[0].impact
        #expect(identity.worse == 0 && identity.medianFMSEChange == 0 && identity.fmse == identity.compositeFMSE)
        let lowest = calibration.scores.map(\.impact.fmse).min()!
        #expect(calibration.best.impact.fmse == lowest)
        #expect(calibration.table().contains("<- lowest fMSE") && calibration.fitDescription.contains("dataset"))
        #expect(harmonizer.changeScale == 1)
        #expect(throws: DatasetError.self) {
            try calibrateChangeScale(dataset: dataset, harmonizer: harmonizer, scales: [1.5], options: options)
        }
    }
}
