// What the two calibrations (`gknet calibrate`: one change scale, or the per-image change gate)
// share: the network's own output on every image, the metrics of a candidate result, the summaries
// of one candidate over the tuning images, overall and per composite-difficulty band, and the
// columns of their tables.
import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetInference

/// Runs the network with neither the model's change scale nor its gate on the images of `dataset`
/// (the first `options.limit`, resized to a fixed `options.resolution` like `evaluate`), calling
/// `body` with each sample and its prediction, then `progress`.
/// - Throws: for an empty split, an image that cannot be read, or what `body` throws.
func forEachUnadjustedPrediction(
    dataset: HarmonizationDataset, harmonizer: Harmonizer, options: EvaluationOptions,
    progress: EvaluationProgress?, _ body: (Sample, PlanarImage) throws -> Void
) throws {
    let listed = options.limit > 0 ? min(options.limit, dataset.count) : dataset.count
    guard listed > 0 else {
        throw DatasetError("\(dataset.root.path): the \(dataset.split.rawValue) split lists no images")
    }
    var unadjusted = harmonizer.options
    unadjusted.changeScale = 1
    unadjusted.useChangeGate = false
    let start = Date()
    for position in 0..<listed {
        var sample = try Sample.load(dataset.samples[position], limits: options.limits)
        if case .fixed(let size) = options.resolution {
            sample = sample.mapImages { $0.resized(width: size, height: size, filter: options.filter) }
        }
        let prediction = try harmonizer.harmonize(
            composite: sample.composite, mask: sample.mask, options: unadjusted)
        try body(sample, prediction)
        progress?(position + 1, listed, Date().timeIntervalSince(start))
    }
}

/// The metrics (`imageMetrics`, 255 scale) of an image against `sample`'s real image and mask.
func sampleMetrics(_ sample: Sample, peak: PSNRPeak) -> (PlanarImage) -> ImageMetrics {
    let target = sample.target.values.map { $0 * 255 }
    return { image in
        imageMetrics(
            prediction: image.values.map { $0 * 255 }, target: target, mask: sample.mask.values,
            height: sample.height, width: sample.width, peak: peak)
    }
}

/// Overall and per-band summaries of paired per-image metrics (results against their composites);
/// nil for no images.
func impactSummaries(results: [ImageMetrics], composites: [ImageMetrics])
    -> (impact: ImpactSummary, byDifficulty: [String: ImpactSummary])?
{
    guard let impact = ImpactSummary(results: results, composites: composites) else { return nil }
    let difficulty = composites.map { CompositeDifficultyBand(compositeFMSE: $0.fmse) }
    var byDifficulty: [String: ImpactSummary] = [:]
    for band in CompositeDifficultyBand.allCases {
        let members = difficulty.indices.filter { difficulty[$0] == band }
        byDifficulty[band.rawValue] = ImpactSummary(
            results: members.map { results[$0] }, composites: members.map { composites[$0] })
    }
    return (impact, byDifficulty)
}

/// `text` right-aligned in `width` characters.
func rightAligned(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

/// The headers of `impactColumns`.
let impactColumnHeaders = [
    rightAligned("fMSE", 10), rightAligned("ratio", 8), rightAligned("dPSNR", 7), rightAligned("worse", 14),
    rightAligned("median d", 10), rightAligned("<300 ratio", 11),
]

/// One table row's columns for a candidate: mean fMSE, its ratio to the composite's, the PSNR gain,
/// the images made worse, the median fMSE change and the ratio on composites below 300.
func impactColumns(_ impact: ImpactSummary, byDifficulty: [String: ImpactSummary]) -> [String] {
    let easy = byDifficulty[CompositeDifficultyBand.below300.rawValue]?.fmseRatio
    return [
        rightAligned(String(format: "%.2f", impact.fmse), 10),
        rightAligned(impact.fmseRatio.map { String(format: "%.3fx", $0) } ?? "-", 8),
        rightAligned(String(format: "%+.2f", impact.psnrGain), 7),
        rightAligned(String(format: "%d (%.1f %%)", impact.worse, 100 * impact.worseShare), 14),
        rightAligned(String(format: "%+.1f", impact.medianFMSEChange), 10),
        rightAligned(easy.map { String(format: "%.3fx", $0) } ?? "-", 11),
    ]
}
