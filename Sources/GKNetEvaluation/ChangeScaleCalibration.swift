import Foundation
// `gknet calibrate`: fits the shrink of a model's predicted change toward the identity,
// result = composite + s * (prediction - composite) inside the mask, on a tuning split. The network
// runs once per image; every s of the grid is then scored from that one prediction (the shrink is
// linear in the prediction), with the same metrics as `gknet evaluate`.
import GKNetDatasets
import GKNetImageCodec
import GKNetInference

/// The scores of one change scale on the tuning images.
public struct ChangeScaleScore: Codable, Sendable, Equatable {
    public var scale: Float
    /// Results against their composites (mean fMSE, ratio, images made worse, median change).
    public var impact: ImpactSummary
    /// The same per composite-difficulty band (`CompositeDifficultyBand` raw values).
    public var impactByDifficulty: [String: ImpactSummary]
}

/// The scores of every scale of the grid and the chosen one.
public struct ChangeScaleCalibration: Codable, Sendable {
    /// The tuning dataset's folder name, split and resolution.
    public var dataset: String
    public var split: String
    public var resolution: String
    public var scores: [ChangeScaleScore]
    /// The scale with the lowest mean fMSE (the largest of equal ones).
    public var best: ChangeScaleScore

    /// One row per scale: s, mean fMSE, ratio to the composite's, PSNR gain, images made worse,
    /// median fMSE change, and the ratio in the easiest band (composites below 300).
    public func table() -> String {
        var lines = [([rightAligned("s", 5)] + impactColumnHeaders).joined(separator: " ")]
        for score in scores {
            lines.append(
                ([rightAligned(String(format: "%.2f", score.scale), 5)]
                    + impactColumns(score.impact, byDifficulty: score.impactByDifficulty)).joined(separator: " ")
                    + (score.scale == best.scale ? "  <- lowest fMSE" : ""))
        }
        return lines.joined(separator: "\n")
    }

    /// One line for the model file's metadata: where and how the scale was fitted.
    public var fitDescription: String {
        let whole = scores.first { $0.scale == 1 }?.impact
        var line =
            "gknet calibrate on \(dataset) (\(split) split, \(best.impact.count) images, \(resolution)): "
            + "mean fMSE \(String(format: "%.2f", best.impact.fmse)) at s = \(best.scale)"
        if let whole {
            line +=
                " vs \(String(format: "%.2f", whole.fmse)) at s = 1; images made worse "
                + "\(String(format: "%.1f", 100 * best.impact.worseShare)) % vs "
                + "\(String(format: "%.1f", 100 * whole.worseShare)) %"
        }
        return line
    }
}

/// The grid 0, 1/steps, ..., 1.
public func changeScaleGrid(steps: Int) -> [Float] {
    precondition(steps > 0, "changeScaleGrid: steps must be positive (got \(steps))")
    return (0...steps).map { Float($0) / Float(steps) }
}

/// Scores every scale of `scales` (each in 0...1) on the images of `dataset` and picks the one
/// with the lowest mean fMSE. The harmonizer's own change scale is ignored (the network's output
/// is the prediction). `options` as for `evaluate` (resolution, limit, filter, peak); at a fixed
/// resolution equal to the network's input size the scores are exactly those `gknet evaluate`
/// gives a model with that scale stored.
/// - Throws: for an empty split, a scale outside 0...1, or an image that cannot be read.
public func calibrateChangeScale(
    dataset: HarmonizationDataset, harmonizer: Harmonizer, scales: [Float],
    options: EvaluationOptions = EvaluationOptions(), progress: EvaluationProgress? = nil
) throws -> ChangeScaleCalibration {
    guard !scales.isEmpty, scales.allSatisfy({ $0 >= 0 && $0 <= 1 }) else {
        throw DatasetError("change scales must lie in 0...1 (got \(scales))")
    }
    var results = [[ImageMetrics]](repeating: [], count: scales.count)
    var composites: [ImageMetrics] = []
    try forEachUnadjustedPrediction(dataset: dataset, harmonizer: harmonizer, options: options, progress: progress) {
        sample, prediction in
        let metrics = sampleMetrics(sample, peak: options.peak)
        composites.append(metrics(sample.composite))
        for (index, scale) in scales.enumerated() {
            results[index].append(metrics(Harmonizer.shrunk(prediction, toward: sample.composite, scale: scale)))
        }
    }
    var scores: [ChangeScaleScore] = []
    for (index, scale) in scales.enumerated() {
        // the split lists images (forEachUnadjustedPrediction checked), so the summaries exist
        guard let summary = impactSummaries(results: results[index], composites: composites) else { continue }
        scores.append(ChangeScaleScore(scale: scale, impact: summary.impact, impactByDifficulty: summary.byDifficulty))
    }
    var best = scores[0]
    for score in scores.dropFirst()
    where score.impact.fmse < best.impact.fmse || (score.impact.fmse == best.impact.fmse && score.scale > best.scale) {
        best = score
    }
    let resolution: String
    switch options.resolution {
    case .fixed(let size): resolution = "\(size)x\(size)"
    case .full: resolution = "full"
    }
    return ChangeScaleCalibration(
        dataset: dataset.root.standardizedFileURL.lastPathComponent, split: dataset.split.rawValue,
        resolution: resolution, scores: scores, best: best)
}
