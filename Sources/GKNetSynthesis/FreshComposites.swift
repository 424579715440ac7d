import Foundation
// Fresh composites while training: instead of a fixed list of synthesized composites, every sample
// of every epoch is a new composite drawn by the synthesizer from a real photo and its object mask.
// The draw uses the loader's per-sample generator, seeded from (seed, epoch, index), so a sample is
// a pure function of those three numbers and a resumed run sees exactly the same composites.
import GKNetDatasets
import GKNetImageCodec
import GKNetTensorCore

/// Real photos with their object masks, as samples whose composite and target are both the photo
/// (a `FreshCompositeTransform` then makes the composite).
public struct PhotoCollection: SampleSource {
    public let sources: [PhotoSource]
    /// Foreground statistics of every photo, in `sources` order: the colour-transfer references.
    public let statistics: [ForegroundStatistics]
    /// Photos found but not used, with the reason (no mask, excluded, unreadable, mask too small...).
    public let skipped: [String: String]
    public let photosFolder: URL
    /// Photos and masks as loaded (decoded, 0...1 planes), kept in memory between epochs by
    /// relative path (filled while measuring).
    public let cache: MemoryBudgetCache<LoadedPhoto>

    /// Finds, checks and measures every photo (on all cores). Throws when no photo is usable.
    /// - Parameters:
    ///   - photos: folder of real photos (searched recursively; .png, .jpg, .jpeg).
    ///   - masks: folder of object masks at the same relative paths as the photos.
    ///   - excludeList: path of a hold-out list (`gknet synthesize --holdout` syntax): matching
    ///     photos are never used.
    ///   - maskFraction: photos whose mask covers less or more of the photo are skipped.
    ///   - cacheBytes: loaded photos and masks kept in memory up to this many bytes (0: every
    ///     sample decodes its files); what a sample holds does not depend on it.
    public init(
        photos: URL, masks: URL, excludeList: String? = nil, maskFraction: ClosedRange<Float> = 0.01...0.9,
        limits: DecodeLimits = DecodeLimits(), cacheBytes: Int = 0
    ) throws {
        photosFolder = photos
        let cache = MemoryBudgetCache<LoadedPhoto>(budgetBytes: cacheBytes)
        self.cache = cache
        let masksFolder = masks
        for folder in [photosFolder, masksFolder] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw DatasetError("\(folder.path): no such folder (synthesis.photos / synthesis.masks)")
            }
        }
        let exclude = try excludeList.map { try HoldoutList(contentsOf: URL(fileURLWithPath: $0)) }
        let (found, unmatched) = try DatasetSynthesis.discover(photos: photosFolder, masks: masksFolder)
        var skipped: [String: String] = [:]
        for name in unmatched { skipped[name] = "no mask with the same name under \(masksFolder.path)" }
        var candidates: [PhotoSource] = []
        for source in found {
            if let exclude, exclude.matches(source.relativePath) {
                skipped[source.relativePath] = "excluded by \(excludeList ?? "")"
            } else {
                candidates.append(source)
            }
        }
        var options = SynthesisOptions()
        options.maskFraction = maskFraction
        options.limits = limits
        let measured = DatasetSynthesis.parallelMap(candidates.count) { i in
            Result {
                let source = candidates[i]
                let (photo, mask) = try DatasetSynthesis.load(source, options: options)
                let statistics = try DatasetSynthesis.measure(source, photo: photo, mask: mask, options: options)
                let loaded = LoadedPhoto(photo: photo, mask: mask)
                cache.keep(loaded, for: source.relativePath, bytes: loaded.bytes)
                return statistics
            }
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
            throw DatasetError(
                "\(photosFolder.path): no usable photo with a mask under \(masksFolder.path) (\(skipped.count) skipped)"
            )
        }
        self.sources = sources
        self.statistics = statistics
        self.skipped = skipped
    }

    public var count: Int { sources.count }
    public var sourceDescription: String { "\(photosFolder.path) (\(sources.count) photos)" }

    public func load(_ index: Int, limits: DecodeLimits) throws -> Sample {
        let source = sources[index]
        let loaded: LoadedPhoto
        if let kept = cache.value(for: source.relativePath) {
            try limits.check(width: kept.photo.width, height: kept.photo.height, path: source.photo.path)
            loaded = kept
        } else {
            var options = SynthesisOptions()
            options.limits = limits
            let (photo, mask) = try DatasetSynthesis.load(source, options: options)
            loaded = LoadedPhoto(photo: photo, mask: mask)
            cache.keep(loaded, for: source.relativePath, bytes: loaded.bytes)
        }
        let (photo, mask) = (loaded.photo, loaded.mask)
        let reference = SampleReference(
            subset: "photos", name: source.relativePath, composite: source.photo, mask: source.mask, real: source.photo,
            listFile: photosFolder.path, line: index + 1)
        return Sample(reference: reference, composite: photo, mask: mask, target: photo)
    }
}

/// A photo and its mask as loaded: RGB and 1-channel planes in 0...1, the same size.
public struct LoadedPhoto: Sendable {
    public let photo: PlanarImage
    public let mask: PlanarImage
    /// Bytes of both images' values.
    public var bytes: Int { (photo.values.count + mask.values.count) * MemoryLayout<Float>.stride }
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
        crop: TrainingAugmentation, synthesizer: CompositeSynthesizer = CompositeSynthesizer(),
        references: [ForegroundStatistics],
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
            let everywhere = PlanarImage(
                width: sample.width, height: sample.height, channels: 1,
                values: [Float](repeating: 1, count: sample.width * sample.height))
            let cropped = crop.apply(
                to: Sample(
                    reference: sample.reference, composite: sample.target, mask: everywhere, target: sample.target),
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
