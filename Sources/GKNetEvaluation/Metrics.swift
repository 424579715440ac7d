import Foundation
// Harmonization metrics exactly as the iHarmony4 literature computes them (the iDIH reference,
// `iharm/inference/metrics.py`): pixels are floats in 0...255, the prediction is clamped and not
// quantised, and every per-image value is averaged over images (never pooled over pixels).
import GKNetDatasets

/// The PSNR peak value: `max(target)` (iDIH, the default) or a fixed 255 (PCT-Net and others).
public enum PSNRPeak: String, Codable, Sendable, CaseIterable {
    case targetMax = "target-max"
    case fixed255 = "255"
}

/// The foreground-ratio bands of the fg-ratio breakdown: [0, 5 %), [5 %, 15 %), [15 %, 100 %].
public enum ForegroundBand: String, Codable, Sendable, CaseIterable, Comparable {
    case upTo5 = "0-5%"
    case from5To15 = "5-15%"
    case from15 = "15-100%"

    /// The band of a foreground ratio (fraction of mask pixels > 0.5).
    public init(ratio: Double) {
        if ratio < 0.05 {
            self = .upTo5
        } else if ratio < 0.15 {
            self = .from5To15
        } else {
            self = .from15
        }
    }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The metrics of one image.
public struct ImageMetrics: Codable, Sendable, Equatable {
    /// Mean of (P - R)^2 over all H*W pixels and 3 channels (0..255 units).
    public var mse: Double
    /// sum(M * (P - R)^2) / (3 * sum(M) + 1e-6): squared error averaged over the (soft) foreground.
    public var fmse: Double
    /// 10 log10(peak^2 / (MSE + 1e-6)).
    public var psnr: Double
    /// Fraction of pixels whose mask value exceeds 0.5.
    public var foregroundRatio: Double

    public var band: ForegroundBand { ForegroundBand(ratio: foregroundRatio) }
}

/// Computes the metrics of one image.
///
/// - Parameters:
///   - prediction: 3 x H x W, 0...255 floats (clamped here to [0, 255], not quantised).
///   - target: 3 x H x W, 0...255.
///   - mask: H x W, 0...1 (soft masks allowed: the fMSE weights pixels by mask value).
///   - peak: the PSNR peak rule.
/// - Precondition: the element counts agree with `height` and `width`.
public func imageMetrics(
    prediction: [Float], target: [Float], mask: [Float], height: Int, width: Int, peak: PSNRPeak = .targetMax
) -> ImageMetrics {
    let plane = height * width
    precondition(
        prediction.count == 3 * plane && target.count == 3 * plane && mask.count == plane,
        "imageMetrics: prediction \(prediction.count), target \(target.count), mask \(mask.count) values for "
            + "\(height)x\(width)"
    )
    var squaredSum = 0.0
    var maskedSquaredSum = 0.0
    var targetMax = -Double.infinity
    for channel in 0..<3 {
        for i in 0..<plane {
            let p = Double(min(max(prediction[channel * plane + i], 0), 255))
            let r = Double(target[channel * plane + i])
            let squared = (p - r) * (p - r)
            squaredSum += squared
            maskedSquaredSum += Double(mask[i]) * squared
            targetMax = max(targetMax, r)
        }
    }
    var maskSum = 0.0
    var foregroundPixels = 0
    for value in mask {
        maskSum += Double(value)
        if value > 0.5 { foregroundPixels += 1 }
    }
    let mse = squaredSum / Double(3 * plane)
    let fmse = maskedSquaredSum / (3 * maskSum + 1e-6)
    let peakValue = peak == .targetMax ? targetMax : 255
    let psnr = 10 * log10(peakValue * peakValue / (mse + 1e-6))
    return ImageMetrics(mse: mse, fmse: fmse, psnr: psnr, foregroundRatio: Double(foregroundPixels) / Double(plane))
}

/// Means of the per-image metrics over a group of images. Encoded with both the means (`mse`,
/// `fmse`, `psnr`) and the sums that add up across the shards of an evaluation.
public struct MetricsSummary: Codable, Sendable, Equatable {
    public private(set) var count: Int = 0
    private var mseSum = 0.0
    private var fmseSum = 0.0
    private var psnrSum = 0.0

    public init() {}

    /// [count, Σ MSE, Σ fMSE, Σ PSNR]: what adds up across the shards of an evaluation.
    public var totals: [Double] { [Double(count), mseSum, fmseSum, psnrSum] }

    /// The summary of the images whose `totals` (summed over shards) these are.
    public init(totals: [Double]) {
        precondition(totals.count == 4, "MetricsSummary(totals:): need [count, Σ MSE, Σ fMSE, Σ PSNR]")
        count = Int(totals[0].rounded())
        (mseSum, fmseSum, psnrSum) = (totals[1], totals[2], totals[3])
    }

    public var mse: Double { count == 0 ? .nan : mseSum / Double(count) }
    public var fmse: Double { count == 0 ? .nan : fmseSum / Double(count) }
    public var psnr: Double { count == 0 ? .nan : psnrSum / Double(count) }

    mutating func add(_ metrics: ImageMetrics) {
        count += 1
        mseSum += metrics.mse
        fmseSum += metrics.fmse
        psnrSum += metrics.psnr
    }

    enum CodingKeys: String, CodingKey {
        case count, mse, fmse, psnr, mseSum, fmseSum, psnrSum
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        count = try c.decode(Int.self, forKey: .count)
        mseSum = try c.decode(Double.self, forKey: .mseSum)
        fmseSum = try c.decode(Double.self, forKey: .fmseSum)
        psnrSum = try c.decode(Double.self, forKey: .psnrSum)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(count, forKey: .count)
        // the means only for a non-empty group (a plain JSONEncoder refuses nan)
        if count > 0 {
            try c.encode(mse, forKey: .mse)
            try c.encode(fmse, forKey: .fmse)
            try c.encode(psnr, forKey: .psnr)
        }
        try c.encode(mseSum, forKey: .mseSum)
        try c.encode(fmseSum, forKey: .fmseSum)
        try c.encode(psnrSum, forKey: .psnrSum)
    }
}

/// How results compare with their composites, image by image: what a user of the model feels.
/// "Worse" means a result's fMSE above its composite's (strictly; the composite itself is never
/// worse than itself).
public struct ImpactSummary: Codable, Sendable, Equatable {
    public var count: Int
    /// Mean fMSE of the results and of the composites.
    public var fmse: Double
    public var compositeFMSE: Double
    /// fmse / compositeFMSE; nil when every composite equals its real image (composite mean 0).
    public var fmseRatio: Double?
    /// Mean PSNR of the results minus that of the composites (dB).
    public var psnrGain: Double
    /// Images whose fMSE is above their composite's, and their share of `count`.
    public var worse: Int
    public var worseShare: Double
    /// Median over images of (result fMSE - composite fMSE): negative when most images improve.
    public var medianFMSEChange: Double

    /// One line: "fMSE 0.813x the composite's, PSNR +0.80 dB, 80 of 220 images worse (36.4 %), median
    /// fMSE change -135.3". When every composite is its real image (a set of perfect composites,
    /// `Scripts/identity_set.py`) there is no ratio: the line gives the results' fMSE instead.
    public var line: String {
        let fmseText =
            fmseRatio.map { String(format: "fMSE %.3fx the composite's", $0) }
            ?? String(format: "fMSE %.2f (every composite equals its real image)", fmse)
        return "\(fmseText), PSNR \(String(format: "%+.2f", psnrGain)) dB, "
            + "\(worse) of \(count) images worse (\(String(format: "%.1f", 100 * worseShare)) %), "
            + "median fMSE change \(String(format: "%+.1f", medianFMSEChange))"
    }

    /// The summary of paired per-image metrics (result, composite); nil for no images.
    public init?(results: [ImageMetrics], composites: [ImageMetrics]) {
        precondition(
            results.count == composites.count, "ImpactSummary: \(results.count) results, \(composites.count) composites"
        )
        guard !results.isEmpty else { return nil }
        count = results.count
        let n = Double(count)
        fmse = results.reduce(0) { $0 + $1.fmse } / n
        compositeFMSE = composites.reduce(0) { $0 + $1.fmse } / n
        fmseRatio = compositeFMSE > 0 ? fmse / compositeFMSE : nil
        psnrGain = (results.reduce(0) { $0 + $1.psnr } - composites.reduce(0) { $0 + $1.psnr }) / n
        worse = zip(results, composites).filter { $0.fmse > $1.fmse }.count
        worseShare = Double(worse) / n
        let changes = zip(results, composites).map { $0.fmse - $1.fmse }.sorted()
        let middle = changes.count / 2
        medianFMSEChange = changes.count % 2 == 1 ? changes[middle] : (changes[middle - 1] + changes[middle]) / 2
    }
}

/// Accumulates per-image metrics into per-subset, per-band and "All" means. "All" averages over
/// images (so subsets weigh by their image counts), as the iHarmony4 tables do.
public struct MetricsAccumulator: Codable, Sendable {
    public private(set) var all = MetricsSummary()
    public private(set) var bySubset: [String: MetricsSummary] = [:]
    public private(set) var byBand: [ForegroundBand: MetricsSummary] = [:]
    public private(set) var bySubsetAndBand: [String: [ForegroundBand: MetricsSummary]] = [:]

    public init() {}

    public mutating func add(_ metrics: ImageMetrics, subset: String) {
        all.add(metrics)
        bySubset[subset, default: MetricsSummary()].add(metrics)
        byBand[metrics.band, default: MetricsSummary()].add(metrics)
        bySubsetAndBand[subset, default: [:]][metrics.band, default: MetricsSummary()].add(metrics)
    }
}
