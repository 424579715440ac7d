import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

// The per-image change gate (`gknet calibrate --gate`): its features, sums, objective and fit
// against the PyTorch fixtures of Scripts/fixtures/change_gate.py, a finite-difference check of the
// objective's gradient, and the stored gate applied by every harmonize path.
@testable import GKNetDatasets
@testable import GKNetEvaluation
@testable import GKNetInference

@Suite struct ChangeGateTests {
    private func expected(_ file: SafeTensorsFile) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(file.metadata["expected"]!.utf8)) as! [String: Any]
    }

    private func image(_ file: SafeTensorsFile, _ name: String) throws -> PlanarImage {
        let tensor = try file.tensor(name)
        return PlanarImage(
            width: tensor.shape[2], height: tensor.shape[1], channels: tensor.shape[0], values: tensor.data)
    }

    private func close(_ a: Double, _ b: Double, relative: Double, absolute: Double) -> Bool {
        abs(a - b) <= absolute + relative * max(abs(a), abs(b))
    }

    @Test func featuresAndSumsMatchTheTwin() throws {
        let file = try Fixtures.load("change_gate/images.safetensors")
        let reference = try expected(file)
        for k in 0..<3 {
            let sample = ChangeGateSample.measure(
                composite: try image(file, "composite\(k)"), mask: try image(file, "mask\(k)"),
                target: try image(file, "target\(k)"), prediction: try image(file, "prediction\(k)"))
            let features = reference["features\(k)"] as! [Double]
            let sums = reference["sums\(k)"] as! [Double]
            #expect(sample.features.count == ChangeGate.featureCount)
            for (ours, theirs) in zip(sample.features, features) {
                #expect(close(ours, theirs, relative: 1e-9, absolute: 1e-12), "image \(k): \(ours) vs \(theirs)")
            }
            for (ours, theirs) in zip([sample.compositeFMSE, sample.agreement, sample.changeEnergy], sums) {
                #expect(close(ours, theirs, relative: 1e-9, absolute: 1e-9), "image \(k): \(ours) vs \(theirs)")
            }
            // the sums give the metric's fMSE of any share of the change
            let composite = try image(file, "composite\(k)")
            let prediction = try image(file, "prediction\(k)")
            let mask = try image(file, "mask\(k)")
            let target = try image(file, "target\(k)")
            let half = Harmonizer.shrunk(prediction, toward: composite, scale: 0.5)
            let metrics = imageMetrics(
                prediction: half.values.map { $0 * 255 }, target: target.values.map { $0 * 255 }, mask: mask.values,
                height: 12, width: 10)
            #expect(close(sample.fmse(factor: 0.5), metrics.fmse, relative: 1e-5, absolute: 1e-6))
        }
    }

    /// The fit set of the fixture: its samples and the standardised features.
    private func fitSet() throws -> (samples: [ChangeGateSample], x: [[Double]], reference: [String: Any]) {
        let file = try Fixtures.load("change_gate/fit.safetensors")
        let reference = try expected(file)
        let features = try file.tensor("features")
        let sums = try file.tensor("sums")
        let count = ChangeGate.featureCount
        let samples = (0..<features.shape[0]).map { i in
            ChangeGateSample(
                features: (0..<count).map { Double(features.data[i * count + $0]) },
                compositeFMSE: Double(sums.data[3 * i]), agreement: Double(sums.data[3 * i + 1]),
                changeEnergy: Double(sums.data[3 * i + 2]))
        }
        let mean = reference["mean"] as! [Double]
        let deviation = reference["deviation"] as! [Double]
        let x = samples.map { sample in (0..<count).map { (sample.features[$0] - mean[$0]) / deviation[$0] } }
        return (samples, x, reference)
    }

    @Test func objectiveAndGradientMatchAutogradAndFiniteDifferences() throws {
        let (samples, x, reference) = try fitSet()
        let file = try Fixtures.load("change_gate/fit.safetensors")
        let point = try file.tensor("point_w").data.map(Double.init)
        let settings = ChangeGateFitSettings()
        let objective = changeGateObjective(
            samples: samples, standardized: x, weights: point, bias: 0.7, settings: settings)
        #expect(close(objective.loss, reference["loss"] as! Double, relative: 1e-12, absolute: 0))
        for (ours, theirs) in zip(objective.weights, reference["gradient_w"] as! [Double]) {
            #expect(close(ours, theirs, relative: 1e-10, absolute: 1e-14), "\(ours) vs \(theirs)")
        }
        #expect(close(objective.bias, reference["gradient_b"] as! Double, relative: 1e-10, absolute: 1e-14))
        // central differences, step 1e-6
        let h = 1e-6
        func loss(_ w: [Double], _ b: Double) -> Double {
            changeGateObjective(samples: samples, standardized: x, weights: w, bias: b, settings: settings).loss
        }
        for k in point.indices {
            var plus = point
            var minus = point
            plus[k] += h
            minus[k] -= h
            let numeric = (loss(plus, 0.7) - loss(minus, 0.7)) / (2 * h)
            #expect(close(numeric, objective.weights[k], relative: 1e-5, absolute: 1e-9), "w\(k): \(numeric)")
        }
        let numericBias = (loss(point, 0.7 + h) - loss(point, 0.7 - h)) / (2 * h)
        #expect(close(numericBias, objective.bias, relative: 1e-5, absolute: 1e-9))
    }

    @Test func fitMatchesTorchAdamAndClosesWhereTheChangeIsWrong() throws {
        let (samples, _, reference) = try fitSet()
        var settings = ChangeGateFitSettings()
        settings.iterations = reference["steps"] as! Int
        let gate = try fitChangeGate(samples: samples, settings: settings)
        for (ours, theirs) in zip(gate.mean, reference["mean"] as! [Double]) {
            #expect(close(ours, theirs, relative: 1e-12, absolute: 1e-15))
        }
        for (ours, theirs) in zip(gate.deviation, reference["deviation"] as! [Double]) {
            #expect(close(ours, theirs, relative: 1e-12, absolute: 1e-15))
        }
        for (ours, theirs) in zip(gate.weights, reference["weights"] as! [Double]) {
            #expect(close(ours, theirs, relative: 1e-7, absolute: 1e-9), "\(ours) vs \(theirs)")
        }
        #expect(close(gate.bias, reference["bias"] as! Double, relative: 1e-7, absolute: 1e-9))
        // the fixture's change is wrong (agreement < 0) exactly where feature 0 > 0.5
        let wrong = samples.filter { $0.agreement < 0 }.map { gate.openness($0.features) }
        let right = samples.filter { $0.agreement > 0 }.map { gate.openness($0.features) }
        #expect(!wrong.isEmpty && !right.isEmpty)
        let meanWrong = wrong.reduce(0, +) / Double(wrong.count)
        let meanRight = right.reduce(0, +) / Double(right.count)
        #expect(meanWrong < meanRight - 0.3, "mean openness: wrong \(meanWrong), right \(meanRight)")
        #expect(throws: DatasetError.self) { try fitChangeGate(samples: Array(samples.prefix(1))) }
    }

    // MARK: - Stored in a model file, applied by every path

    private func temporaryFolder() throws -> URL { try TinyModelFiles.temporaryFolder("gknet-gate") }

    /// A tiny 32 px model with a random residual head, saved with `metadata`.
    private func modelFile(metadata: [String: String], in folder: URL) throws -> URL {
        try TinyModelFiles.write(.residual, metadata: metadata, in: folder)
    }

    /// The tiny model saved with `gate` in its metadata, loaded as every path loads it.
    private func gatedHarmonizer(_ gate: ChangeGate, in folder: URL) throws -> Harmonizer {
        try ModelLoading.harmonizer(
            path: try modelFile(metadata: [ChangeGate.metadataKey: try gate.metadataValue()], in: folder).path)
    }

    /// A gate that ignores the features: openness sigmoid(bias).
    private func constantGate(bias: Double, threshold: Double) -> ChangeGate {
        let n = ChangeGate.featureCount
        return ChangeGate(
            mean: Array(repeating: 0, count: n), deviation: Array(repeating: 1, count: n),
            weights: Array(repeating: 0, count: n), bias: bias, threshold: threshold)
    }

    private func inputs(width: Int, height: Int) -> (composite: PlanarImage, mask: PlanarImage) {
        TinyModelFiles.inputs(width: width, height: height)
    }

    @Test func aStoredGateScalesOrClosesTheChangeInEveryPath() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = try ModelLoading.harmonizer(path: try modelFile(metadata: [:], in: folder).path)
        func gated(_ gate: ChangeGate) throws -> Harmonizer { try gatedHarmonizer(gate, in: folder) }
        let closed = try gated(constantGate(bias: -3, threshold: 0.5))  // g = 0.047 < 0.5
        let quarter = try gated(constantGate(bias: log(0.25 / 0.75), threshold: 0.1))  // g = 0.25
        #expect(plain.changeGate == nil && closed.changeGate?.threshold == 0.5)
        for (width, height) in [(32, 32), (80, 56)] {
            let (composite, mask) = inputs(width: width, height: height)
            let whole = try plain.harmonize(composite: composite, mask: mask)
            #expect(whole != composite)
            // closed: the composite exactly, at the network size and at full resolution
            #expect(try closed.harmonize(composite: composite, mask: mask) == composite)
            // turned off per call: the network's change as it is
            let off = try closed.harmonize(
                composite: composite, mask: mask, options: Harmonizer.Options(useChangeGate: false))
            #expect(off == whole)
            if width == 32 {
                let shrunk = try quarter.harmonize(composite: composite, mask: mask)
                var worst: Float = 0
                for i in whole.values.indices {
                    worst = max(
                        worst,
                        abs(shrunk.values[i] - (composite.values[i] + 0.25 * (whole.values[i] - composite.values[i]))))
                }
                #expect(worst <= 1e-6, "max difference \(worst)")
            }
        }
    }

    @Test func aWholeGateKeepsAllOfTheChangeOrNone() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plain = try ModelLoading.harmonizer(path: try modelFile(metadata: [:], in: folder).path)
        func gated(_ gate: ChangeGate) throws -> Harmonizer { try gatedHarmonizer(gate, in: folder) }
        var open = constantGate(bias: log(0.25 / 0.75), threshold: 0.1)  // g = 0.25 >= 0.1
        open.keep = .whole
        var closed = open
        closed.threshold = 0.3  // g = 0.25 < 0.3
        #expect(open.factor(Array(repeating: 0, count: ChangeGate.featureCount)) == 1)
        #expect(closed.factor(Array(repeating: 0, count: ChangeGate.featureCount)) == 0)
        let openModel = try gated(open)
        let closedModel = try gated(closed)
        #expect(openModel.changeGate?.keep == .whole)
        for (width, height) in [(32, 32), (80, 56)] {
            let (composite, mask) = inputs(width: width, height: height)
            let whole = try plain.harmonize(composite: composite, mask: mask)
            #expect(whole != composite)
            // open: the network's change as it is, at the network size and at full resolution
            #expect(try openModel.harmonize(composite: composite, mask: mask) == whole)
            #expect(try closedModel.harmonize(composite: composite, mask: mask) == composite)
        }
    }

    @Test func aGateStoredWithoutKeepIsAShareGate() throws {
        var gate = constantGate(bias: 0.5, threshold: 0.2)
        var object = try JSONSerialization.jsonObject(with: Data(try gate.metadataValue().utf8)) as! [String: Any]
        #expect(object["keep"] as? String == "share")
        object["keep"] = nil
        let older = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let decoded = try ChangeGate.stored(in: [ChangeGate.metadataKey: older])
        #expect(decoded == gate)
        gate.keep = .whole
        #expect(try ChangeGate.stored(in: [ChangeGate.metadataKey: try gate.metadataValue()]) == gate)
        object["keep"] = "half"
        let unknown = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        #expect(throws: HarmonizeError.self) { try ChangeGate.stored(in: [ChangeGate.metadataKey: unknown]) }
    }

    /// Scores of one threshold from per-image (result, composite) fMSE pairs.
    private func score(_ threshold: Double, _ pairs: [(Double, Double)]) -> ChangeGateThresholdScore {
        func metrics(_ fmse: Double) -> ImageMetrics {
            ImageMetrics(mse: fmse / 10, fmse: fmse, psnr: 30, foregroundRatio: 0.1)
        }
        let summary = impactSummaries(results: pairs.map { metrics($0.0) }, composites: pairs.map { metrics($0.1) })!
        return ChangeGateThresholdScore(
            threshold: threshold, closed: 0, impact: summary.impact, impactByDifficulty: summary.byDifficulty)
    }

    @Test func theThresholdRuleHonoursTheNearIdentityLimit() {
        // one composite below 300 and four harder ones; 0.2 makes none worse but the easy one (1.5x),
        // 0.5 leaves the easy one alone and gains less, 0.9 makes two of five worse
        let scores = [
            score(0.2, [(150, 100), (500, 1000), (1000, 2000), (1500, 3000), (2000, 4000)]),
            score(0.5, [(100, 100), (700, 1000), (1400, 2000), (2100, 3000), (2800, 4000)]),
            score(0.9, [(90, 100), (1100, 1000), (1200, 2000), (3100, 3000), (1000, 4000)]),
        ]
        #expect(selectChangeGateThreshold(scores, maxWorseShare: 0.2).threshold == 0.2)
        #expect(selectChangeGateThreshold(scores, maxWorseShare: 0.2, maxNearIdentityRatio: 1).threshold == 0.5)
        #expect(selectChangeGateThreshold(scores, maxWorseShare: 0.4, maxNearIdentityRatio: 1).threshold == 0.9)
        // nothing qualifies: the fewest images made worse, then the lower fMSE
        #expect(selectChangeGateThreshold(scores, maxWorseShare: 0.1, maxNearIdentityRatio: 0.5).threshold == 0.5)
        // a split without composites below 300 meets the limit
        let hard = [score(0.1, [(500, 1000), (3100, 3000)]), score(0.6, [(900, 1000), (2900, 3000)])]
        #expect(selectChangeGateThreshold(hard, maxWorseShare: 0.5, maxNearIdentityRatio: 1).threshold == 0.1)
    }

    @Test func gateThresholdsAreExactDecimals() {
        let grid = changeGateThresholdGrid(steps: 20)
        #expect(grid.count == 21 && grid.first == 0 && grid.last == 1 && grid[7] == 0.35 && grid[5] == 0.25)
    }

    @Test func aNearIdentityLimitOnFewCompositesGetsANote() throws {
        let few = try #require(nearIdentitySampleNote(compositesBelow300: 32, maxNearIdentityRatio: 1))
        #expect(few.contains("32 tuning composites") && few.contains("larger draw"))
        #expect(nearIdentitySampleNote(compositesBelow300: 166, maxNearIdentityRatio: 1) == nil)
        #expect(nearIdentitySampleNote(compositesBelow300: 32, maxNearIdentityRatio: nil) == nil)
        #expect(
            nearIdentitySampleNote(compositesBelow300: nearIdentityCompositesForALimit, maxNearIdentityRatio: 1) == nil)
    }

    @Test func aDamagedStoredGateIsAClearError() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var wrongSize = constantGate(bias: 0, threshold: 0.5)
        wrongSize.weights.removeLast()
        var badThreshold = constantGate(bias: 0, threshold: 0.5)
        badThreshold.threshold = 2
        var zeroDeviation = constantGate(bias: 0, threshold: 0.5)
        zeroDeviation.deviation[3] = 0
        let texts = [
            "not json", "{}", try wrongSize.metadataValue(), try badThreshold.metadataValue(),
            try zeroDeviation.metadataValue(),
        ]
        for text in texts {
            let url = try modelFile(metadata: [ChangeGate.metadataKey: text], in: folder)
            do {
                _ = try ModelLoading.harmonizer(path: url.path)
                Issue.record("gate \"\(text)\" was accepted")
            } catch let error as CheckpointError {
                #expect(error.description.contains(url.path) && error.description.contains(ChangeGate.metadataKey))
            }
        }
    }

    /// The whole calibration on the tiny fixture dataset: every threshold scored, threshold 1 closes
    /// every image (nothing made worse), the chosen one respects the limit, and `evaluate` of the
    /// model with the gate stored reproduces the chosen row exactly.
    @Test func calibrationChoosesAThresholdThatEvaluateReproduces() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = try modelFile(metadata: [:], in: folder)
        let harmonizer = try ModelLoading.harmonizer(path: url.path)
        let dataset = try HarmonizationDataset(root: Fixtures.url("evaluation/dataset"), split: .test)
        var options = EvaluationOptions()
        options.resolution = .fixed(32)
        var settings = ChangeGateFitSettings()
        settings.iterations = 50
        for keep in ChangeGate.Keep.allCases {
            let calibration = try calibrateChangeGate(
                fit: dataset, tuning: dataset, harmonizer: harmonizer, thresholds: [0, 0.5, 1], maxWorseShare: 0.2,
                maxNearIdentityRatio: 1, keep: keep, settings: settings, options: options)
            #expect(calibration.gate.keep == keep)
            #expect(calibration.scores.map(\.threshold) == [0, 0.5, 1])
            let all = calibration.scores[2]
            #expect(
                all.closed == dataset.count && all.impact.worse == 0 && all.impact.fmse == all.impact.compositeFMSE)
            #expect(calibration.best.impact.worseShare <= 0.2)
            let nearIdentity = calibration.best.impactByDifficulty[CompositeDifficultyBand.below300.rawValue]
            #expect((nearIdentity?.fmseRatio ?? 0) <= 1)
            #expect(calibration.table().contains("<- chosen") && calibration.table().contains("no gate"))
            if keep == .whole {
                // threshold 0 never closes a whole gate: the network's output as it is
                #expect(calibration.scores[0].impact == calibration.ungated.impact)
            }
            var file = try SafeTensorsFile(contentsOf: url)
            file.metadata[ChangeGate.metadataKey] = try calibration.gate.metadataValue()
            let stored = folder.appendingPathComponent("gated.safetensors")
            try file.write(to: stored)
            let report = try evaluate(
                dataset: dataset, source: .model(try ModelLoading.harmonizer(path: stored.path)), options: options)
            #expect(report.impact?.fmse == calibration.best.impact.fmse)
            #expect(report.impact?.worse == calibration.best.impact.worse)
        }
        #expect(throws: DatasetError.self) {
            var wrongSize = options
            wrongSize.resolution = .fixed(64)
            _ = try calibrateChangeGate(
                fit: dataset, tuning: dataset, harmonizer: harmonizer, thresholds: [0], maxWorseShare: 0.2,
                options: wrongSize)
        }
    }
}
