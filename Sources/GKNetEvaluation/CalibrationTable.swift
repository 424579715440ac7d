// What the two calibrations (`gknet calibrate`: one change scale, or the per-image change gate)
// share: the summaries of one candidate over the tuning images, overall and per composite-difficulty
// band, and the columns of their tables.
import Foundation
import GKNetDatasets

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
