// Classic harmonization baselines for `gknet evaluate --baseline`: the composite itself, and
// Reinhard's colour transfer (Lab mean / standard deviation of the foreground matched to the
// background's).
import GKNetImageCodec

/// A non-learned way to produce a prediction.
public enum ClassicBaseline: String, Codable, Sendable, CaseIterable {
    /// The composite unchanged (the "input composite" row of the iHarmony4 tables).
    case identity
    /// Lab mean/std transfer of the foreground (mask > 0.5) to the background statistics.
    case reinhard

    /// - Parameters: composite 3 x H x W and mask 1 x H x W in 0...1.
    /// - Returns: the prediction, blended with the soft mask (background unchanged).
    public func apply(composite: PlanarImage, mask: PlanarImage) -> PlanarImage {
        switch self {
        case .identity:
            return composite
        case .reinhard:
            return reinhardTransfer(composite: composite, mask: mask)
        }
    }
}

/// Reinhard et al. (2001) colour transfer in CIE Lab: each channel of the foreground is shifted and
/// scaled so its mean and standard deviation equal the background's; the result is blended with
/// the soft mask. An empty foreground or background returns the composite.
func reinhardTransfer(composite: PlanarImage, mask: PlanarImage) -> PlanarImage {
    let lab = ColorSpace.lab(fromRGB: composite)
    let n = composite.planeSize
    var foregroundStatistics = [(sum: Double, squares: Double)](repeating: (0, 0), count: 3)
    var backgroundStatistics = foregroundStatistics
    var foregroundCount = 0.0, backgroundCount = 0.0
    for p in 0..<n {
        let isForeground = mask.values[p] > 0.5
        if isForeground { foregroundCount += 1 } else { backgroundCount += 1 }
        for c in 0..<3 {
            let v = Double(lab.values[c * n + p])
            if isForeground {
                foregroundStatistics[c].sum += v
                foregroundStatistics[c].squares += v * v
            } else {
                backgroundStatistics[c].sum += v
                backgroundStatistics[c].squares += v * v
            }
        }
    }
    guard foregroundCount > 0, backgroundCount > 0 else { return composite }
    var transferred = lab
    for c in 0..<3 {
        let fm = foregroundStatistics[c].sum / foregroundCount
        let fs = max(foregroundStatistics[c].squares / foregroundCount - fm * fm, 0).squareRoot()
        let bm = backgroundStatistics[c].sum / backgroundCount
        let bs = max(backgroundStatistics[c].squares / backgroundCount - bm * bm, 0).squareRoot()
        let scale = Float((bs + 1e-3) / (fs + 1e-3))
        for p in 0..<n {
            transferred.values[c * n + p] = (lab.values[c * n + p] - Float(fm)) * scale + Float(bm)
        }
    }
    let rgb = ColorSpace.rgb(fromLab: transferred)
    var result = composite
    for c in 0..<3 {
        for p in 0..<n {
            let m = mask.values[p]
            result.values[c * n + p] = m * rgb.values[c * n + p] + (1 - m) * composite.values[c * n + p]
        }
    }
    return result
}
