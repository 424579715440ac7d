import Foundation
// `gknet calibrate --gate`: fits the per-image change gate (GKNetInference/ChangeGate.swift) on a
// fit set (a training split) and chooses its threshold on a tuning split.
//
// For one image with composite c, real image t and the network's prediction p, the result
// c + f (p - c) has fMSE(f) = A - 2 f B + f^2 C with A = fMSE of the composite, B = <t - c, p - c> and
// C = <p - c, p - c>, all mask-weighted like `imageMetrics` (255 scale). The gate
// g = sigmoid(b + w . standardised features) is fitted by full-batch Adam on
//     L(w, b) = mean_i fMSE_i(g_i) / (A_i + floor) + weightDecay * |w|^2,
// the fMSE relative to the composite's own (plus a floor), so that a composite that needed little
// change weighs as much as one that needed a lot. The threshold below which the gate closes
// entirely is chosen on the tuning split: the lowest mean fMSE among the thresholds that leave at
// most `maxWorseShare` of the images worse than their composite (and, when asked, the composites
// below 300 fMSE not made worse on average). An open gate keeps g of the change (`share`) or all
// of it (`whole`: the same fit, used only to decide whether to change the image).
import GKNetDatasets
import GKNetImageCodec
import GKNetInference

/// One image of the fit set: the gate's features and the three sums that give the fMSE of any
/// share of the change kept.
public struct ChangeGateSample: Sendable, Equatable {
    public var features: [Double]
    /// A: the composite's fMSE.
    public var compositeFMSE: Double
    /// B: mask-weighted <real - composite, prediction - composite> / (3 sum(mask)), 255 scale.
    public var agreement: Double
    /// C: mask-weighted |prediction - composite|^2 / (3 sum(mask)), 255 scale.
    public var changeEnergy: Double

    public init(features: [Double], compositeFMSE: Double, agreement: Double, changeEnergy: Double) {
        self.features = features
        self.compositeFMSE = compositeFMSE
        self.agreement = agreement
        self.changeEnergy = changeEnergy
    }

    /// fMSE of composite + factor (prediction - composite).
    public func fmse(factor: Double) -> Double {
        compositeFMSE - 2 * factor * agreement + factor * factor * changeEnergy
    }

    /// The sample of one image (all three images at the same size, values in 0...1).
    public static func measure(
        composite: PlanarImage, mask: PlanarImage, target: PlanarImage, prediction: PlanarImage
    ) -> ChangeGateSample {
        let plane = mask.planeSize
        var a = 0.0
        var b = 0.0
        var c = 0.0
        var maskSum = 0.0
        for i in 0..<plane { maskSum += Double(mask.values[i]) }
        for channel in 0..<3 {
            for i in 0..<plane {
                let m = Double(mask.values[i])
                let source = Double(composite.values[channel * plane + i])
                let needed = 255 * (Double(target.values[channel * plane + i]) - source)
                let made = 255 * (Double(prediction.values[channel * plane + i]) - source)
                a += m * needed * needed
                b += m * needed * made
                c += m * made * made
            }
        }
        let denominator = 3 * maskSum + 1e-6
        return ChangeGateSample(
            features: ChangeGate.features(composite: composite, mask: mask, prediction: prediction),
            compositeFMSE: a / denominator, agreement: b / denominator, changeEnergy: c / denominator)
    }
}

/// How the gate is fitted (defaults: docs/results.md "A per-image change gate").
public struct ChangeGateFitSettings: Codable, Sendable, Equatable {
    /// Added to each composite's fMSE in the relative loss.
    public var lossFloor = 100.0
    /// L2 weight on the logistic weights (not the bias).
    public var weightDecay = 1e-3
    /// Full-batch Adam steps, learning rate, and the starting bias (sigmoid(2) = 0.88: mostly open).
    public var iterations = 2000
    public var learningRate = 0.01
    public var initialBias = 2.0
    public init() {}
}

/// The loss of `ChangeGateCalibration` and its gradient, for standardised features `x`.
/// - Returns: the loss, d loss / d weights and d loss / d bias.
public func changeGateObjective(
    samples: [ChangeGateSample], standardized x: [[Double]], weights: [Double], bias: Double,
    settings: ChangeGateFitSettings
) -> (loss: Double, weights: [Double], bias: Double) {
    let n = Double(samples.count)
    var loss = 0.0
    var gradientW = [Double](repeating: 0, count: weights.count)
    var gradientB = 0.0
    for (sample, features) in zip(samples, x) {
        var z = bias
        for k in weights.indices { z += weights[k] * features[k] }
        let g = 1 / (1 + exp(-z))
        let relative = 1 / (sample.compositeFMSE + settings.lossFloor)
        loss += sample.fmse(factor: g) * relative / n
        let dLossDz = (-2 * sample.agreement + 2 * g * sample.changeEnergy) * relative / n * g * (1 - g)
        for k in weights.indices { gradientW[k] += dLossDz * features[k] }
        gradientB += dLossDz
    }
    for k in weights.indices {
        loss += settings.weightDecay * weights[k] * weights[k]
        gradientW[k] += 2 * settings.weightDecay * weights[k]
    }
    return (loss, gradientW, gradientB)
}

/// Fits the gate's weights on `samples` (threshold 0: the caller chooses it).
/// - Throws: for fewer than two samples.
public func fitChangeGate(samples: [ChangeGateSample], settings: ChangeGateFitSettings = ChangeGateFitSettings())
    throws -> ChangeGate
{
    guard samples.count >= 2 else { throw DatasetError("the change gate needs at least 2 fit images") }
    let count = ChangeGate.featureCount
    let n = Double(samples.count)
    var mean = [Double](repeating: 0, count: count)
    for sample in samples { for k in 0..<count { mean[k] += sample.features[k] / n } }
    var deviation = [Double](repeating: 0, count: count)
    for sample in samples {
        for k in 0..<count { deviation[k] += (sample.features[k] - mean[k]) * (sample.features[k] - mean[k]) }
    }
    // the sample standard deviation, + 1e-6 so that a constant feature stays finite
    deviation = deviation.map { ($0 / (n - 1)).squareRoot() + 1e-6 }
    let x = samples.map { sample in (0..<count).map { (sample.features[$0] - mean[$0]) / deviation[$0] } }
    // full-batch Adam (PyTorch's update: bias-corrected moments, eps outside the square root)
    var parameters = [Double](repeating: 0, count: count) + [settings.initialBias]
    var first = [Double](repeating: 0, count: count + 1)
    var second = [Double](repeating: 0, count: count + 1)
    let (beta1, beta2, epsilon) = (0.9, 0.999, 1e-8)
    for step in 1...max(1, settings.iterations) {
        let objective = changeGateObjective(
            samples: samples, standardized: x, weights: Array(parameters[0..<count]), bias: parameters[count],
            settings: settings)
        let gradient = objective.weights + [objective.bias]
        let correction1 = 1 - pow(beta1, Double(step))
        let correction2 = 1 - pow(beta2, Double(step))
        for k in parameters.indices {
            first[k] = beta1 * first[k] + (1 - beta1) * gradient[k]
            second[k] = beta2 * second[k] + (1 - beta2) * gradient[k] * gradient[k]
            let denominator = second[k].squareRoot() / correction2.squareRoot() + epsilon
            parameters[k] -= settings.learningRate / correction1 * first[k] / denominator
        }
    }
    return try ChangeGate(
        mean: mean, deviation: deviation, weights: Array(parameters[0..<count]), bias: parameters[count], threshold: 0
    ).validated()
}

/// The scores of one threshold on the tuning images.
public struct ChangeGateThresholdScore: Codable, Sendable, Equatable {
    public var threshold: Double
    /// Images whose gate closed entirely (result = composite).
    public var closed: Int
    public var impact: ImpactSummary
    /// Per composite-difficulty band (`CompositeDifficultyBand` raw values).
    public var impactByDifficulty: [String: ImpactSummary]
}

/// The fitted gate, every threshold's scores and the chosen one.
public struct ChangeGateCalibration: Codable, Sendable {
    public var fitDataset: String
    public var fitSplit: String
    public var fitImages: Int
    public var dataset: String
    public var split: String
    public var resolution: String
    public var settings: ChangeGateFitSettings
    public var maxWorseShare: Double
    /// The largest ratio to the composite allowed on the composites below 300 fMSE (nil: no limit).
    public var maxNearIdentityRatio: Double?
    /// The network's output as it is (no gate), on the tuning images.
    public var ungated: ChangeGateThresholdScore
    public var scores: [ChangeGateThresholdScore]
    public var best: ChangeGateThresholdScore
    /// The fitted gate with the chosen threshold.
    public var gate: ChangeGate

    /// One row per threshold (and the ungated network first).
    public func table() -> String {
        var lines = [
            ([rightAligned("threshold", 9), rightAligned("closed", 7)] + impactColumnHeaders).joined(separator: " ")
        ]
        for (label, score) in [("no gate", ungated)] + scores.map({ (String(format: "%.2f", $0.threshold), $0) }) {
            let chosen = label != "no gate" && score.threshold == best.threshold
            lines.append(
                ([rightAligned(label, 9), rightAligned("\(score.closed)", 7)]
                    + impactColumns(score.impact, byDifficulty: score.impactByDifficulty)).joined(separator: " ")
                    + (chosen ? "  <- chosen" : ""))
        }
        return lines.joined(separator: "\n")
    }

    /// One line for the model file's metadata.
    public var fitDescription: String {
        "gknet calibrate --gate: fitted on \(fitDataset) (\(fitSplit) split, \(fitImages) images), threshold "
            + "\(best.threshold) chosen on \(dataset) (\(split) split, \(best.impact.count) images, \(resolution); "
            + "lowest mean fMSE with at most \(String(format: "%.0f", 100 * maxWorseShare)) % made worse"
            + (maxNearIdentityRatio.map { String(format: " and composites below 300 at most %.2fx", $0) } ?? "")
            + "), keeps the \(gate.keep == .whole ? "whole change" : "share g of the change"), "
            + String(format: "loss floor %g, weight decay %g: ", settings.lossFloor, settings.weightDecay)
            + String(
                format: "fMSE %.2f vs %.2f ungated, images made worse %.1f %% vs %.1f %%", best.impact.fmse,
                ungated.impact.fmse, 100 * best.impact.worseShare, 100 * ungated.impact.worseShare)
    }
}

/// `forEachUnadjustedPrediction` at the network's input size, where the gate's features are
/// computed (at any other size it throws).
private func forEachPrediction(
    dataset: HarmonizationDataset, harmonizer: Harmonizer, options: EvaluationOptions,
    progress: EvaluationProgress?, _ body: (Sample, PlanarImage) throws -> Void
) throws {
    guard case .fixed(let size) = options.resolution, size == harmonizer.networkSize else {
        throw DatasetError(
            "the change gate is fitted at the network's input size "
                + "(\(harmonizer.networkSize)x\(harmonizer.networkSize))"
        )
    }
    try forEachUnadjustedPrediction(
        dataset: dataset, harmonizer: harmonizer, options: options, progress: progress, body)
}

/// The gate samples of every image of `dataset` (for `fitChangeGate`).
public func changeGateSamples(
    dataset: HarmonizationDataset, harmonizer: Harmonizer, options: EvaluationOptions = EvaluationOptions(),
    progress: EvaluationProgress? = nil
) throws -> [ChangeGateSample] {
    var samples: [ChangeGateSample] = []
    try forEachPrediction(dataset: dataset, harmonizer: harmonizer, options: options, progress: progress) {
        sample, prediction in
        samples.append(
            ChangeGateSample.measure(
                composite: sample.composite, mask: sample.mask, target: sample.target, prediction: prediction))
    }
    return samples
}

/// The threshold rule: among `scores`, the lowest mean fMSE of those with at most `maxWorseShare` of
/// the images made worse and, with `maxNearIdentityRatio`, a ratio to the composite of at most that
/// on the composites below 300 fMSE (a split without such composites meets it). When none qualifies,
/// the one with the fewest images made worse (then the lower fMSE).
/// - Precondition: `scores` is not empty.
public func selectChangeGateThreshold(
    _ scores: [ChangeGateThresholdScore], maxWorseShare: Double, maxNearIdentityRatio: Double? = nil
) -> ChangeGateThresholdScore {
    precondition(!scores.isEmpty, "selectChangeGateThreshold: no scores")
    let allowed = scores.filter { score in
        guard score.impact.worseShare <= maxWorseShare else { return false }
        guard let limit = maxNearIdentityRatio,
            let ratio = score.impactByDifficulty[CompositeDifficultyBand.below300.rawValue]?.fmseRatio
        else { return true }
        return ratio <= limit
    }
    if let lowest = allowed.min(by: { $0.impact.fmse < $1.impact.fmse }) { return lowest }
    return scores.min {
        ($0.impact.worseShare, $0.impact.fmse) < ($1.impact.worseShare, $1.impact.fmse)
    }!
}

/// Gate thresholds 0, 1/steps, ..., 1 in Double (the scale grid's Floats would store 0.35 as
/// 0.3499999940395355).
public func changeGateThresholdGrid(steps: Int) -> [Double] {
    precondition(steps > 0, "changeGateThresholdGrid: steps must be positive (got \(steps))")
    return (0...steps).map { Double($0) / Double(steps) }
}

/// Below this many tuning composites under 300 fMSE, a near-identity limit decides on too few of them:
/// on the tuning split's 32 a gate met 1.0x by closing all of them at one threshold step, and gave
/// 1.44x on 166 composites of the same photos (docs/results.md "How many near-identity composites a
/// gate's choice needs").
public let nearIdentityCompositesForALimit = 100

/// A note for `gknet calibrate --gate` when the near-identity limit rests on fewer than
/// `nearIdentityCompositesForALimit` tuning composites below 300 fMSE (nil without a limit, or
/// with enough of them).
public func nearIdentitySampleNote(compositesBelow300 count: Int, maxNearIdentityRatio: Double?) -> String? {
    guard maxNearIdentityRatio != nil, count < nearIdentityCompositesForALimit else { return nil }
    return "note: the near-identity limit rests on \(count) tuning composites below 300 fMSE; a few of them opening "
        + "or closing moves their ratio a lot. Check the chosen gate on a larger draw of the tuning photos "
        + "(gknet synthesize --per-photo 30, then gknet evaluate; docs/evaluation.md, \"How many tuning composites "
        + "the choice needs\")."
}

/// Scores `gate` (as it is, but for its threshold) at every threshold of `thresholds` on the images
/// of `tuning` and picks one by `selectChangeGateThreshold`. At the network's input size the scores
/// are exactly those `gknet evaluate` gives the model with the gate stored.
public func chooseChangeGateThreshold(
    gate: ChangeGate, tuning: HarmonizationDataset, harmonizer: Harmonizer, thresholds: [Double],
    maxWorseShare: Double, maxNearIdentityRatio: Double? = nil, options: EvaluationOptions = EvaluationOptions(),
    progress: EvaluationProgress? = nil
) throws -> (ungated: ChangeGateThresholdScore, scores: [ChangeGateThresholdScore], best: ChangeGateThresholdScore) {
    guard !thresholds.isEmpty, thresholds.allSatisfy({ (0...1).contains($0) }) else {
        throw DatasetError("gate thresholds must lie in 0...1 (got \(thresholds))")
    }
    var results = [[ImageMetrics]](repeating: [], count: thresholds.count + 1)
    var closed = [Int](repeating: 0, count: thresholds.count + 1)
    var composites: [ImageMetrics] = []
    try forEachPrediction(dataset: tuning, harmonizer: harmonizer, options: options, progress: progress) {
        sample, prediction in
        let metrics = sampleMetrics(sample, peak: options.peak)
        composites.append(metrics(sample.composite))
        results[0].append(metrics(prediction))
        let features = ChangeGate.features(composite: sample.composite, mask: sample.mask, prediction: prediction)
        for (index, threshold) in thresholds.enumerated() {
            var thresholded = gate
            thresholded.threshold = threshold
            let factor = thresholded.factor(features)
            if factor == 0 { closed[index + 1] += 1 }
            results[index + 1].append(
                metrics(Harmonizer.shrunk(prediction, toward: sample.composite, scale: factor)))
        }
    }
    var scores: [ChangeGateThresholdScore] = []
    for (index, threshold) in ([1.0] + thresholds).enumerated() {
        // the split lists images (forEachPrediction checked), so the summaries exist
        guard let summary = impactSummaries(results: results[index], composites: composites) else { continue }
        scores.append(
            ChangeGateThresholdScore(
                threshold: threshold, closed: closed[index], impact: summary.impact,
                impactByDifficulty: summary.byDifficulty))
    }
    let ungated = scores.removeFirst()
    let best = selectChangeGateThreshold(
        scores, maxWorseShare: maxWorseShare, maxNearIdentityRatio: maxNearIdentityRatio)
    return (ungated, scores, best)
}

/// Fits the gate on `fit` and chooses its threshold on `tuning` (see the file's comment).
public func calibrateChangeGate(
    fit: HarmonizationDataset, tuning: HarmonizationDataset, harmonizer: Harmonizer, thresholds: [Double],
    maxWorseShare: Double, maxNearIdentityRatio: Double? = nil, keep: ChangeGate.Keep = .share,
    settings: ChangeGateFitSettings = ChangeGateFitSettings(), options: EvaluationOptions = EvaluationOptions(),
    fitProgress: EvaluationProgress? = nil, tuningProgress: EvaluationProgress? = nil
) throws -> ChangeGateCalibration {
    guard (0...1).contains(maxWorseShare) else {
        throw DatasetError("the largest share of images made worse must lie in 0...1 (got \(maxWorseShare))")
    }
    if let limit = maxNearIdentityRatio, !(limit.isFinite && limit >= 0) {
        throw DatasetError("the near-identity band's largest ratio must be a number >= 0 (got \(limit))")
    }
    let samples = try changeGateSamples(dataset: fit, harmonizer: harmonizer, options: options, progress: fitProgress)
    var gate = try fitChangeGate(samples: samples, settings: settings)
    gate.keep = keep
    let choice = try chooseChangeGateThreshold(
        gate: gate, tuning: tuning, harmonizer: harmonizer, thresholds: thresholds, maxWorseShare: maxWorseShare,
        maxNearIdentityRatio: maxNearIdentityRatio, options: options, progress: tuningProgress)
    gate.threshold = choice.best.threshold
    let size = harmonizer.networkSize
    return ChangeGateCalibration(
        fitDataset: fit.root.standardizedFileURL.lastPathComponent, fitSplit: fit.split.rawValue,
        fitImages: samples.count, dataset: tuning.root.standardizedFileURL.lastPathComponent,
        split: tuning.split.rawValue, resolution: "\(size)x\(size)", settings: settings, maxWorseShare: maxWorseShare,
        maxNearIdentityRatio: maxNearIdentityRatio, ungated: choice.ungated, scores: choice.scores, best: choice.best,
        gate: gate)
}
