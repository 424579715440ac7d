// The per-image change gate (issue 25, docs/results.md "A per-image change gate"): a logistic model
// that decides, from a few colour statistics of the composite, the mask and the network's
// prediction, how much of the predicted change to keep for this image, and to keep none of it when
// the network is likely to move the object the wrong way. Fitted by `gknet calibrate --gate`
// (GKNetEvaluation/ChangeGateCalibration.swift), stored in a model file's metadata as JSON,
// applied by every harmonize path (through `Harmonizer.predictWithTransforms`).
import Foundation
import GKNetImageCodec

/// result = composite + factor * (prediction - composite), per image, with
/// factor = 0 if g < threshold, else g (``Keep/share``) or 1 (``Keep/whole``),
/// g = sigmoid(bias + sum_k weights[k] * (f_k - mean[k]) / deviation[k])
/// and f the ``features(composite:mask:prediction:)`` of the image at the network's input size.
public struct ChangeGate: Codable, Sendable, Equatable {
    /// How much of the change an open gate (g >= threshold) keeps.
    public enum Keep: String, Codable, Sendable, CaseIterable {
        /// g of it: a soft shrink toward the composite (the first gates; a stored gate without
        /// `keep` is one of these).
        case share
        /// All of it: the gate only decides whether to change the image (docs/results.md "A gate
        /// that keeps the whole change").
        case whole
    }

    /// What each feature is (the order of `mean`, `deviation` and `weights`). Values are in the
    /// images' 0...1 units; "foreground" means weighted by the mask, "background" by 1 - mask.
    public static let featureNames: [String] = [
        "foreground mean change R", "foreground mean change G", "foreground mean change B",
        "foreground mean absolute change R", "foreground mean absolute change G", "foreground mean absolute change B",
        "foreground mean composite R", "foreground mean composite G", "foreground mean composite B",
        "background mean composite R", "background mean composite G", "background mean composite B",
        "mask mean",
    ]
    public static var featureCount: Int { featureNames.count }

    /// Metadata key of the gate in a model file (this struct as JSON).
    public static let metadataKey = "gknet.change_gate"
    /// Metadata key of how it was fitted (one line of text).
    public static let fitKey = "gknet.change_gate_fit"

    /// Standardisation of each feature (the fit set's mean and standard deviation).
    public var mean: [Double]
    public var deviation: [Double]
    /// Logistic weights on the standardised features, and the bias.
    public var weights: [Double]
    public var bias: Double
    /// Gate values below this keep none of the change (0 = never close entirely).
    public var threshold: Double
    /// What an open gate keeps.
    public var keep: Keep

    public init(
        mean: [Double], deviation: [Double], weights: [Double], bias: Double, threshold: Double, keep: Keep = .share
    ) {
        self.mean = mean
        self.deviation = deviation
        self.weights = weights
        self.bias = bias
        self.threshold = threshold
        self.keep = keep
    }

    private enum CodingKeys: String, CodingKey { case mean, deviation, weights, bias, threshold, keep }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        mean = try container.decode([Double].self, forKey: .mean)
        deviation = try container.decode([Double].self, forKey: .deviation)
        weights = try container.decode([Double].self, forKey: .weights)
        bias = try container.decode(Double.self, forKey: .bias)
        threshold = try container.decode(Double.self, forKey: .threshold)
        // files written before `keep` existed hold share gates
        keep = try container.decodeIfPresent(Keep.self, forKey: .keep) ?? .share
    }

    /// Checks the sizes and that every number is finite (a file's gate may be damaged).
    public func validated() throws -> ChangeGate {
        let n = Self.featureCount
        guard mean.count == n, deviation.count == n, weights.count == n else {
            throw HarmonizeError(
                "change gate: expected \(n) means, deviations and weights, found \(mean.count), \(deviation.count), "
                    + "\(weights.count)")
        }
        let finite =
            mean.allSatisfy(\.isFinite) && weights.allSatisfy(\.isFinite) && bias.isFinite && threshold.isFinite
        guard finite, deviation.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw HarmonizeError("change gate: a value is not finite (or a deviation is not positive)")
        }
        guard (0...1).contains(threshold) else {
            throw HarmonizeError("change gate: threshold \(threshold) is not in 0...1")
        }
        return self
    }

    /// The gate's features of one image.
    /// - Parameters:
    ///   - composite: 3 x h x w in 0...1.
    ///   - mask: 1 x h x w in 0...1.
    ///   - prediction: 3 x h x w, the network's (clamped, unshrunk) output for them.
    /// - Returns: `featureCount` values in the order of ``featureNames``.
    public static func features(composite: PlanarImage, mask: PlanarImage, prediction: PlanarImage) -> [Double] {
        let plane = mask.planeSize
        precondition(
            composite.values.count == 3 * plane && prediction.values.count == 3 * plane,
            "ChangeGate.features: composite, mask and prediction sizes differ")
        var foregroundWeight = 0.0
        var backgroundWeight = 0.0
        var change = [Double](repeating: 0, count: 3)
        var absoluteChange = [Double](repeating: 0, count: 3)
        var foreground = [Double](repeating: 0, count: 3)
        var background = [Double](repeating: 0, count: 3)
        for i in 0..<plane {
            let m = Double(mask.values[i])
            foregroundWeight += m
            backgroundWeight += 1 - m
        }
        for c in 0..<3 {
            for i in 0..<plane {
                let m = Double(mask.values[i])
                let source = Double(composite.values[c * plane + i])
                let moved = Double(prediction.values[c * plane + i]) - source
                change[c] += m * moved
                absoluteChange[c] += m * abs(moved)
                foreground[c] += m * source
                background[c] += (1 - m) * source
            }
        }
        let fg = max(foregroundWeight, 1e-6)
        let bg = max(backgroundWeight, 1e-6)
        var features: [Double] = change.map { $0 / fg }
        features += absoluteChange.map { $0 / fg }
        features += foreground.map { $0 / fg }
        features += background.map { $0 / bg }
        features.append(foregroundWeight / Double(plane))
        return features
    }

    /// g in 0...1 for the features of one image (before the threshold).
    public func openness(_ features: [Double]) -> Double {
        precondition(features.count == Self.featureCount, "ChangeGate.openness: \(features.count) features")
        var z = bias
        for k in features.indices { z += weights[k] * (features[k] - mean[k]) / deviation[k] }
        return 1 / (1 + exp(-z))
    }

    /// The share of the change kept for an image with these features: 0 below the threshold,
    /// else g (``Keep/share``) or 1 (``Keep/whole``).
    public func factor(_ features: [Double]) -> Float {
        let g = openness(features)
        if g < threshold { return 0 }
        return keep == .whole ? 1 : Float(g)
    }

    /// The gate as the one-line JSON stored in a model file.
    public func metadataValue() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The gate stored in `metadata`, nil when there is none.
    /// - Throws: `HarmonizeError` when the stored text is not a valid gate.
    public static func stored(in metadata: [String: String]) throws -> ChangeGate? {
        guard let text = metadata[metadataKey] else { return nil }
        let gate: ChangeGate
        do {
            gate = try JSONDecoder().decode(ChangeGate.self, from: Data(text.utf8))
        } catch {
            throw HarmonizeError("\(metadataKey) is not a valid change gate (\(error))")
        }
        do {
            return try gate.validated()
        } catch {
            throw HarmonizeError("\(metadataKey): \(error)")
        }
    }
}
