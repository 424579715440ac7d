// Fresh composites while training: instead of a fixed list of synthesized composites, every sample
// of every epoch is a new composite drawn by the synthesizer from a real photo and its object mask.
// The draw uses the loader's per-sample generator, seeded from (seed, epoch, index), so a sample is
// a pure function of those three numbers and a resumed run sees exactly the same composites.
import Foundation
import GKNetModel
import ImageCodec
import TensorCore

/// Anything a `BatchLoader` can read samples from: a dataset split, or a collection of photos.
public protocol SampleSource: Sendable {
    var count: Int { get }
    /// Decodes sample `index` (0..<count).
    func load(_ index: Int, limits: DecodeLimits) throws -> Sample
    /// Names the source in error messages ("data/HGCompris (train split)").
    var sourceDescription: String { get }
}

extension HarmonizationDataset: SampleSource {
    public var sourceDescription: String { "\(root.path) (\(split.rawValue) split)" }
}

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

    public init(photos: String, masks: String) {
        self.photos = photos
        self.masks = masks
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case photos, masks, exclude
        case globalChangeProbability = "global_change_probability", regionMaskProbability = "region_mask_probability"
        case minimumMaskFraction = "minimum_mask_fraction", maximumMaskFraction = "maximum_mask_fraction"
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
    }
}

/// Real photos with their object masks, as samples whose composite and target are both the photo
/// (a `FreshCompositeTransform` then makes the composite).
public struct PhotoCollection: SampleSource {
    public let sources: [PhotoSource]
    /// Foreground statistics of every photo, in `sources` order: the colour-transfer references.
    public let statistics: [ForegroundStatistics]
    /// Photos found but not used, with the reason (no mask, excluded, unreadable, mask too small...).
    public let skipped: [String: String]
    public let photosFolder: URL

    /// Finds, checks and measures every photo (on all cores). Throws when no photo is usable.
    public init(settings: FreshCompositeSettings, limits: DecodeLimits = DecodeLimits()) throws {
        try settings.validate()
        photosFolder = URL(fileURLWithPath: settings.photos)
        let masksFolder = URL(fileURLWithPath: settings.masks)
        for folder in [photosFolder, masksFolder] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw DatasetError("\(folder.path): no such folder (synthesis.photos / synthesis.masks)")
            }
        }
        let exclude = try settings.exclude.map { try HoldoutList(contentsOf: URL(fileURLWithPath: $0)) }
        let (found, unmatched) = try DatasetSynthesis.discover(photos: photosFolder, masks: masksFolder)
        var skipped: [String: String] = [:]
        for name in unmatched { skipped[name] = "no mask with the same name under \(masksFolder.path)" }
        var candidates: [PhotoSource] = []
        for source in found {
            if let exclude, exclude.matches(source.relativePath) {
                skipped[source.relativePath] = "excluded by \(settings.exclude ?? "")"
            } else {
                candidates.append(source)
            }
        }
        var options = SynthesisOptions()
        options.maskFraction = Float(settings.minimumMaskFraction)...Float(settings.maximumMaskFraction)
        options.limits = limits
        let measured = DatasetSynthesis.parallelMap(candidates.count) { i in
            Result { try DatasetSynthesis.preparePhoto(candidates[i], options: options) }
        }
        var sources: [PhotoSource] = []
        var statistics: [ForegroundStatistics] = []
        for (source, result) in zip(candidates, measured) {
            switch result {
            case .success(let value):
                sources.append(source)
                statistics.append(value)
            case .failure(let error):
                skipped[source.relativePath] = "\(error)"
            }
        }
        guard !sources.isEmpty else {
            throw DatasetError("\(photosFolder.path): no usable photo with a mask under \(masksFolder.path) (\(skipped.count) skipped)")
        }
        self.sources = sources
        self.statistics = statistics
        self.skipped = skipped
    }

    public var count: Int { sources.count }
    public var sourceDescription: String { "\(photosFolder.path) (\(sources.count) photos)" }

    public func load(_ index: Int, limits: DecodeLimits) throws -> Sample {
        let source = sources[index]
        let photo = try ImageFile.readRGB(source.photo, limits: limits)
        let mask = try ImageFile.readMask(source.mask, source: .first, limits: limits)
        guard photo.width == mask.width, photo.height == mask.height else {
            throw DatasetError("\(source.mask.path) is \(mask.width)x\(mask.height) but photo \(source.photo.path) is \(photo.width)x\(photo.height)")
        }
        let reference = SampleReference(
            subset: "photos", name: source.relativePath, composite: source.photo, mask: source.mask, real: source.photo,
            listFile: photosFolder.path, line: index + 1)
        return Sample(reference: reference, composite: photo, mask: mask, target: photo)
    }
}

/// Makes a fresh composite of a real photo: random resized crop and flip (`crop`), optionally a
/// random region mask instead of the object mask, optionally a global photometric change of the
/// whole photo (the new target), then one synthesizer draw inside the mask (the composite). The
/// input sample's target is the real photo; its composite is ignored.
public struct FreshCompositeTransform: SampleTransform {
    public var crop: TrainingAugmentation
    public var synthesizer: CompositeSynthesizer
    /// Colour-transfer references (a photo's own statistics are skipped by name).
    public var references: [ForegroundStatistics]
    public var globalChangeProbability: Float
    public var regionMaskProbability: Float

    public init(
        crop: TrainingAugmentation, synthesizer: CompositeSynthesizer = CompositeSynthesizer(), references: [ForegroundStatistics],
        globalChangeProbability: Float, regionMaskProbability: Float
    ) {
        self.crop = crop
        self.synthesizer = synthesizer
        self.references = references
        self.globalChangeProbability = globalChangeProbability
        self.regionMaskProbability = regionMaskProbability
    }

    public func apply(to sample: Sample, generator: inout SplitMix64) -> Sample {
        let usesRegionMask = generator.chance(regionMaskProbability)
        var real: PlanarImage
        var mask: PlanarImage
        if usesRegionMask {
            // the crop ignores the object; the region is drawn on the cropped photo
            let everywhere = PlanarImage(width: sample.width, height: sample.height, channels: 1,
                                         values: [Float](repeating: 1, count: sample.width * sample.height))
            let cropped = crop.apply(to: Sample(reference: sample.reference, composite: sample.target, mask: everywhere, target: sample.target),
                                     generator: &generator)
            real = cropped.target
            mask = Self.regionMask(width: real.width, height: real.height, generator: &generator)
        } else {
            let cropped = crop.apply(to: sample, generator: &generator)
            real = cropped.target
            mask = synthesizer.binarized(cropped.mask)
        }
        if generator.chance(globalChangeProbability) {
            var global = synthesizer
            global.familyWeights[.colorTransfer] = 0
            let adjustment = global.drawAdjustment(references: [], generator: &generator)
            real = global.apply(adjustment, to: real, mask: mask)
        }
        let name = sample.reference.name
        let made = synthesizer.synthesize(
            real: real, mask: mask, references: references.filter { $0.name != name }, generator: &generator)
        // every draw rejected (a nearly empty crop of the mask): the composite is the real image
        return Sample(reference: sample.reference, composite: made?.composite ?? real, mask: mask, target: real)
    }

    /// A smooth random region: 1 to 3 rotated Gaussian blobs summed and cut at 0.5, redrawn until
    /// it covers 3-60 % of the image (then a centred ellipse).
    /// - Returns: 1 x height x width, values 0 or 1.
    public static func regionMask(width: Int, height: Int, generator: inout SplitMix64) -> PlanarImage {
        let size = Float(min(width, height))
        for _ in 0..<8 {
            var field = [Float](repeating: 0, count: width * height)
            for _ in 0..<(1 + generator.index(below: 3)) {
                let centerX = generator.uniform(0.15...0.85) * Float(width)
                let centerY = generator.uniform(0.15...0.85) * Float(height)
                let radiusU = generator.uniform(0.08...0.3) * size
                let radiusV = generator.uniform(0.08...0.3) * size
                let angle = generator.uniform(0...Float.pi)
                let (cosine, sine) = (cos(angle), sin(angle))
                for y in 0..<height {
                    let dy = Float(y) + 0.5 - centerY
                    for x in 0..<width {
                        let dx = Float(x) + 0.5 - centerX
                        let u = (dx * cosine + dy * sine) / radiusU
                        let v = (-dx * sine + dy * cosine) / radiusV
                        field[y * width + x] += exp(-0.5 * (u * u + v * v))
                    }
                }
            }
            let values = field.map { $0 > 0.5 ? Float(1) : 0 }
            let fraction = values.reduce(0, +) / Float(values.count)
            if fraction >= 0.03 && fraction <= 0.6 {
                return PlanarImage(width: width, height: height, channels: 1, values: values)
            }
        }
        var values = [Float](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                let u = (Float(x) + 0.5) / Float(width) - 0.5, v = (Float(y) + 0.5) / Float(height) - 0.5
                if u * u + v * v < 0.09 { values[y * width + x] = 1 }
            }
        }
        return PlanarImage(width: width, height: height, channels: 1, values: values)
    }
}
