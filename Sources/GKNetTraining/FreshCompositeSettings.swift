import Foundation
// The `synthesis` section of a training configuration: fresh composites drawn from photos and
// masks while training (docs/training.md, "Fresh composites").
import GKNetDatasets
import GKNetImageCodec
import GKNetModel
import GKNetSynthesis

/// The `synthesis` section of a training configuration (docs/training.md, "Fresh composites").
public struct FreshCompositeSettings: Codable, Sendable, Equatable {
    /// Folder of real photos (searched recursively; .png, .jpg, .jpeg).
    public var photos: String
    /// Folder of object masks at the same relative paths as the photos.
    public var masks: String
    /// A hold-out list (`gknet synthesize --holdout` syntax): matching photos are never trained on.
    public var exclude: String?
    /// Probability of a random global photometric change of the whole photo before compositing
    /// (exposure, white balance, gamma, saturation, contrast or a time-of-day look): the target
    /// itself then varies, not only the pasted foreground.
    public var globalChangeProbability = 0.5
    /// Probability of replacing the object mask by a random smooth region (1 to 3 merged blobs).
    public var regionMaskProbability = 0.2
    /// Photos whose mask covers less or more of the photo than this are skipped.
    public var minimumMaskFraction = 0.01
    public var maximumMaskFraction = 0.9
    /// How strong each composite's change is: realistic (a target fMSE per composite, measured on
    /// the training crop; near-identity foregrounds included) or legacy (small changes redrawn).
    public var difficulty = DifficultyMode.realistic
    /// Realistic difficulty: the distribution of the target fMSE (`TargetDifficulty`: share of
    /// near-identity composites, median and log-spread of the rest); nil keeps its defaults (iHarmony4-like).
    public var nearIdentityShare: Double?
    public var medianFMSE: Double?
    public var fmseLogDeviation: Double?
    /// Photos and masks kept in memory as loaded (decoded, 16 bytes per pixel), in MiB: each photo
    /// is decoded once instead of once per sample; beyond the budget the rest are decoded on every
    /// read; 0 turns it off. The composites do not depend on it.
    public var cacheMegabytes = 1024

    public init(photos: String, masks: String) {
        self.photos = photos
        self.masks = masks
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case photos, masks, exclude
        case globalChangeProbability = "global_change_probability", regionMaskProbability = "region_mask_probability"
        case minimumMaskFraction = "minimum_mask_fraction", maximumMaskFraction = "maximum_mask_fraction"
        case difficulty, nearIdentityShare = "near_identity_share", medianFMSE = "median_fmse"
        case fmseLogDeviation = "fmse_log_deviation"
        case cacheMegabytes = "cache_megabytes"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        photos = try c.decode(String.self, forKey: .photos)
        masks = try c.decode(String.self, forKey: .masks)
        exclude = try c.decodeIfPresent(String.self, forKey: .exclude)
        func read(_ key: CodingKeys, _ value: inout Double) throws {
            if let decoded = try c.decodeIfPresent(Double.self, forKey: key) { value = decoded }
        }
        try read(.globalChangeProbability, &globalChangeProbability)
        try read(.regionMaskProbability, &regionMaskProbability)
        try read(.minimumMaskFraction, &minimumMaskFraction)
        try read(.maximumMaskFraction, &maximumMaskFraction)
        if let text = try c.decodeIfPresent(String.self, forKey: .difficulty) {
            guard let mode = DifficultyMode(rawValue: text) else {
                throw ConfigurationError(
                    "synthesis.difficulty must be one of "
                        + DifficultyMode.allCases.map(\.rawValue).joined(separator: ", ")
                        + " (got \"\(text)\")")
            }
            difficulty = mode
        }
        nearIdentityShare = try c.decodeIfPresent(Double.self, forKey: .nearIdentityShare)
        medianFMSE = try c.decodeIfPresent(Double.self, forKey: .medianFMSE)
        fmseLogDeviation = try c.decodeIfPresent(Double.self, forKey: .fmseLogDeviation)
        if let megabytes = try c.decodeIfPresent(Int.self, forKey: .cacheMegabytes) { cacheMegabytes = megabytes }
    }

    /// The synthesizer of these settings: its difficulty, the fMSE measured on the training crop.
    public var synthesizer: CompositeSynthesizer {
        var synthesizer = CompositeSynthesizer()
        synthesizer.difficulty = difficulty
        synthesizer.targetDifficulty.measurementSize = nil
        if let nearIdentityShare { synthesizer.targetDifficulty.nearIdentityShare = Float(nearIdentityShare) }
        if let medianFMSE { synthesizer.targetDifficulty.medianFMSE = Float(medianFMSE) }
        if let fmseLogDeviation { synthesizer.targetDifficulty.logDeviation = Float(fmseLogDeviation) }
        return synthesizer
    }

    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError(message) }
        }
        try require(!photos.isEmpty && !masks.isEmpty, "synthesis.photos and synthesis.masks must name folders")
        try require((0...1).contains(globalChangeProbability), "synthesis.global_change_probability must be in 0...1")
        try require((0...1).contains(regionMaskProbability), "synthesis.region_mask_probability must be in 0...1")
        try require(
            minimumMaskFraction >= 0 && minimumMaskFraction < maximumMaskFraction && maximumMaskFraction <= 1,
            "synthesis mask fractions must satisfy 0 <= minimum < maximum <= 1")
        try require(
            nearIdentityShare.map { (0...1).contains($0) } ?? true, "synthesis.near_identity_share must be in 0...1")
        try require(medianFMSE.map { $0 > 0 && $0.isFinite } ?? true, "synthesis.median_fmse must be positive")
        try require(
            fmseLogDeviation.map { $0 >= 0 && $0.isFinite } ?? true, "synthesis.fmse_log_deviation must be >= 0")
        try require(
            (0...1 << 24).contains(cacheMegabytes), "synthesis.cache_megabytes must be in 0...16777216 (0: no cache)")
    }
}

extension PhotoCollection {
    /// The photos of a training configuration's `synthesis` section (checked first).
    public init(settings: FreshCompositeSettings, limits: DecodeLimits = DecodeLimits()) throws {
        try settings.validate()
        try self.init(
            photos: URL(fileURLWithPath: settings.photos), masks: URL(fileURLWithPath: settings.masks),
            excludeList: settings.exclude,
            maskFraction: Float(settings.minimumMaskFraction)...Float(settings.maximumMaskFraction), limits: limits,
            cacheBytes: settings.cacheMegabytes << 20)
    }
}

extension FreshCompositeTransform {
    /// The transform of a training configuration's `synthesis` section over `photos` (its
    /// foreground statistics are the colour-transfer references); `crop` is set per step.
    public init(settings: FreshCompositeSettings, photos: PhotoCollection, crop: TrainingAugmentation) {
        self.init(
            crop: crop, synthesizer: settings.synthesizer, references: photos.statistics,
            globalChangeProbability: Float(settings.globalChangeProbability),
            regionMaskProbability: Float(settings.regionMaskProbability))
    }
}
