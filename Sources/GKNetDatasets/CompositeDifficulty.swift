// How hard a composite is: its foreground MSE against the real image (the composite's own fMSE,
// 0...255 scale, as `gknet evaluate` computes it at 256x256), and the bands the evaluation report
// and the synthesis histogram share (docs/evaluation.md, docs/data.md "Difficulty").
import Foundation
import GKNetImageCodec

/// Composite-difficulty bands by the composite's own fMSE: < 300, 300-1,000, 1,000-3,000, >= 3,000.
/// iHarmony4's test set has about 13 %, 40 %, 35 % and 12 % of its composites in them (median 905).
public enum CompositeDifficultyBand: String, Codable, Sendable, CaseIterable, Comparable {
    case below300 = "<300"
    case from300To1000 = "300-1000"
    case from1000To3000 = "1000-3000"
    case from3000 = ">=3000"

    /// The band of a composite whose fMSE against the real image is `fmse`.
    public init(compositeFMSE fmse: Double) {
        if fmse < 300 {
            self = .below300
        } else if fmse < 1000 {
            self = .from300To1000
        } else if fmse < 3000 {
            self = .from1000To3000
        } else {
            self = .from3000
        }
    }

    /// iHarmony4 test set's share of composites in this band (rounded; the target of the realistic mix).
    public var iHarmony4Share: Double {
        switch self {
        case .below300: 0.13
        case .from300To1000: 0.40
        case .from1000To3000: 0.35
        case .from3000: 0.12
        }
    }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Counts of composites per difficulty band, with the median fMSE: what `gknet synthesize` prints
/// and records.
public struct DifficultyHistogram: Codable, Sendable, Equatable {
    /// Composites per band, keyed by the band's raw value.
    public var counts: [String: Int]
    public var total: Int
    /// Median composite fMSE (nil when empty).
    public var medianFMSE: Double?

    public init(fmse values: [Double]) {
        var counts = Dictionary(uniqueKeysWithValues: CompositeDifficultyBand.allCases.map { ($0.rawValue, 0) })
        for value in values { counts[CompositeDifficultyBand(compositeFMSE: value).rawValue, default: 0] += 1 }
        self.counts = counts
        total = values.count
        medianFMSE = values.isEmpty ? nil : Self.median(values)
    }

    /// The median (mean of the two middle values for an even count; nan when empty).
    public static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    public func count(_ band: CompositeDifficultyBand) -> Int { counts[band.rawValue] ?? 0 }

    /// One line: "N composites: <300 12 (5.5 %), 300-1000 ..., median fMSE 905".
    public var description: String {
        let bands = CompositeDifficultyBand.allCases.map { band in
            let share = total == 0 ? 0 : 100 * Double(count(band)) / Double(total)
            return "\(band.rawValue) \(count(band)) (\(String(format: "%.1f", share)) %)"
        }
        return "\(total) composites: " + bands.joined(separator: ", ")
            + ", median fMSE \(medianFMSE.map { String(format: "%.0f", $0) } ?? "-")"
    }
}

/// The composite's fMSE against the real image as `gknet evaluate` computes it: both images and
/// the mask resized to `size` x `size` (bilinear, the mask soft at edges; nil keeps their size),
/// then sum(M * (C - R)^2) / (3 sum(M) + 1e-6) on 0...255 values.
///
/// - Parameters: composite and real 3 x H x W in 0...1, mask 1 x H x W (same size).
public func compositeFMSE(composite: PlanarImage, real: PlanarImage, mask: PlanarImage, size: Int? = 256)
    -> Double
{
    precondition(
        composite.channels == 3 && real.channels == 3 && mask.channels == 1 && composite.width == real.width
            && composite.height == real.height && mask.width == real.width && mask.height == real.height,
        "compositeFMSE: composite \(composite.width)x\(composite.height)x\(composite.channels), real "
            + "\(real.width)x\(real.height)x\(real.channels), mask \(mask.width)x\(mask.height)x\(mask.channels)")
    // (C - R) is resized instead of C and R: the filter is linear, so the result is the same.
    var difference = composite
    for i in difference.values.indices { difference.values[i] -= real.values[i] }
    var weights = mask
    if let size, size != real.width || size != real.height {
        difference = difference.resized(width: size, height: size, filter: .bilinear)
        weights = mask.resized(width: size, height: size, filter: .bilinear)
    }
    let plane = weights.planeSize
    var weighted = 0.0, maskSum = 0.0
    for p in 0..<plane {
        let m = Double(weights.values[p])
        guard m != 0 else { continue }
        maskSum += m
        for c in 0..<3 {
            let d = 255 * Double(difference.values[c * plane + p])
            weighted += m * d * d
        }
    }
    return weighted / (3 * maskSum + 1e-6)
}
