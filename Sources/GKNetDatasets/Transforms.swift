// Joint transforms of (composite, mask, target): the evaluation resize and the seeded training
// augmentation (random resized crop + horizontal flip, resampled while the mask is empty).
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// A transform applied to every sample a loader produces. `generator` is seeded per sample from
/// (seed, epoch, sample index), so the result never depends on timing or thread.
public protocol SampleTransform: Sendable {
    func apply(to sample: Sample, generator: inout SplitMix64) -> Sample
}

/// Leaves samples as decoded (full resolution; for batch size 1 or same-sized data).
public struct IdentityTransform: SampleTransform {
    public init() {}
    public func apply(to sample: Sample, generator: inout SplitMix64) -> Sample { sample }
}

/// Resizes composite, mask and target to `width` x `height`, not preserving the aspect ratio
/// (the evaluation protocol: 256 x 256).
public struct ResizeTransform: SampleTransform, Codable {
    public var width: Int
    public var height: Int
    /// `.automatic` = exact area average when shrinking, bilinear when enlarging. (The iDIH
    /// reference uses OpenCV's bilinear, which aliases when shrinking; `.bilinear` reproduces it.)
    public var filter: ResizeFilter

    public init(width: Int = 256, height: Int = 256, filter: ResizeFilter = .automatic) {
        self.width = width
        self.height = height
        self.filter = filter
    }

    public func apply(to sample: Sample, generator: inout SplitMix64) -> Sample {
        if sample.width == width && sample.height == height { return sample }
        return sample.mapImages { $0.resized(width: width, height: height, filter: filter) }
    }
}

/// A crop rectangle in pixels.
public struct CropRegion: Sendable, Equatable, Codable {
    public var x: Int, y: Int, width: Int, height: Int
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

extension PlanarImage {
    /// The pixels inside `region` (which must lie inside the image).
    public func cropped(to region: CropRegion) -> PlanarImage {
        precondition(
            region.x >= 0 && region.y >= 0 && region.width > 0 && region.height > 0
                && region.x + region.width <= width && region.y + region.height <= height,
            "cropped: region \(region) outside a \(width)x\(height) image")
        var out = [Float](repeating: 0, count: channels * region.width * region.height)
        for c in 0..<channels {
            for row in 0..<region.height {
                let from = (c * height + region.y + row) * width + region.x
                let to = (c * region.height + row) * region.width
                out.replaceSubrange(to..<to + region.width, with: values[from..<from + region.width])
            }
        }
        return PlanarImage(width: region.width, height: region.height, channels: channels, values: out)
    }

    /// Mirrored left-right.
    public func flippedHorizontally() -> PlanarImage {
        var out = values
        for row in 0..<(channels * height) {
            let base = row * width
            for x in 0..<width { out[base + x] = values[base + width - 1 - x] }
        }
        return PlanarImage(width: width, height: height, channels: channels, values: out)
    }

    /// The sum of channel 0 over `region` (the mask mass inside a crop).
    func sum(in region: CropRegion) -> Float {
        var total: Float = 0
        for row in region.y..<(region.y + region.height) {
            let base = row * width
            for x in region.x..<(region.x + region.width) { total += values[base + x] }
        }
        return total
    }
}

/// A random colour change of the whole image, the same for composite and target (never the mask):
/// with `probability`, every pixel's display values are multiplied by a brightness and a per-channel
/// gain (a white balance), then pushed away from or toward their luma (Rec. 601) by a saturation
/// factor, and clamped to 0...1. A pure function of each pixel's colour, so the composite's
/// foreground change survives it and the background stays equal to the target's. It takes from the
/// network the absolute colour of an object (a fish is orange) and leaves it the object's colour
/// relative to its scene, which is what harmonization needs (docs/training.md, "Colour jitter").
public struct GlobalColorJitter: Codable, Sendable, Equatable {
    public var probability: Float
    public var brightness: ClosedRange<Float>
    public var gain: ClosedRange<Float>
    public var saturation: ClosedRange<Float>

    public init(
        probability: Float, brightness: ClosedRange<Float> = 0.8...1.2, gain: ClosedRange<Float> = 0.85...1.15,
        saturation: ClosedRange<Float> = 0.7...1.3
    ) {
        self.probability = probability
        self.brightness = brightness
        self.gain = gain
        self.saturation = saturation
    }

    /// One drawn change: per-channel multipliers (brightness x gain) and the saturation factor.
    public struct Draw: Sendable, Equatable {
        public var multipliers: [Float]
        public var saturation: Float

        public init(multipliers: [Float], saturation: Float) {
            self.multipliers = multipliers
            self.saturation = saturation
        }
    }

    /// The change for one sample, or nil (no change) with probability 1 - `probability`.
    public func draw(generator: inout SplitMix64) -> Draw? {
        guard generator.chance(probability) else { return nil }
        let level = generator.uniform(brightness)
        let multipliers = (0..<3).map { _ in level * generator.uniform(gain) }
        return Draw(multipliers: multipliers, saturation: generator.uniform(saturation))
    }

    /// `image` (3 x H x W, 0...1) with `change` applied to every pixel.
    public static func apply(_ change: Draw, to image: PlanarImage) -> PlanarImage {
        precondition(image.channels == 3, "GlobalColorJitter.apply: expected an RGB image")
        var result = image
        let n = image.planeSize
        let (red, green, blue) = (change.multipliers[0], change.multipliers[1], change.multipliers[2])
        result.values.withUnsafeMutableBufferPointer { values in
            for p in 0..<n {
                let r = values[p] * red, g = values[n + p] * green, b = values[2 * n + p] * blue
                let luma = 0.299 * r + 0.587 * g + 0.114 * b
                values[p] = min(max(luma + change.saturation * (r - luma), 0), 1)
                values[n + p] = min(max(luma + change.saturation * (g - luma), 0), 1)
                values[2 * n + p] = min(max(luma + change.saturation * (b - luma), 0), 1)
            }
        }
        return result
    }
}

/// Training augmentation: a random resized crop (area fraction `scale`, aspect ratio log-uniform
/// in `aspectRatio`, as torchvision/albumentations `RandomResizedCrop`), resized to
/// `width` x `height`, then a horizontal flip with probability `flipProbability`, then (when set)
/// a `GlobalColorJitter` of composite and target alike.
///
/// A crop whose mask would hold less than `minimumMaskPixels` of mask mass at the output size is
/// drawn again (the iDIH loader's check), up to `attempts` times; then the whole image is used.
public struct TrainingAugmentation: SampleTransform, Codable {
    public var width: Int
    public var height: Int
    public var scale: ClosedRange<Float>
    public var aspectRatio: ClosedRange<Float>
    public var flipProbability: Float
    public var minimumMaskPixels: Float
    public var attempts: Int
    public var filter: ResizeFilter
    /// The colour change of the whole image after crop and flip (nil = none; then the generator is
    /// used exactly as without it).
    public var colorJitter: GlobalColorJitter?
    /// With its probability, the sample is replaced by a background-shift sample (`BackgroundShift`)
    /// made from its target, after the crop, flip and colour jitter (nil = none; then the
    /// generator is used exactly as without it).
    public var backgroundShift: GlobalColorJitter?

    public init(
        width: Int = 256, height: Int = 256, scale: ClosedRange<Float> = 0.5...1.0,
        aspectRatio: ClosedRange<Float> = 0.75...(4.0 / 3.0),
        flipProbability: Float = 0.5, minimumMaskPixels: Float = 1, attempts: Int = 10,
        filter: ResizeFilter = .automatic, colorJitter: GlobalColorJitter? = nil,
        backgroundShift: GlobalColorJitter? = nil
    ) {
        self.colorJitter = colorJitter
        self.backgroundShift = backgroundShift
        self.width = width
        self.height = height
        self.scale = scale
        self.aspectRatio = aspectRatio
        self.flipProbability = flipProbability
        self.minimumMaskPixels = minimumMaskPixels
        self.attempts = attempts
        self.filter = filter
    }

    /// torchvision's `RandomResizedCrop.get_params`: 10 tries for a crop of the drawn area and
    /// ratio that fits, else a centre crop at the clamped ratio.
    public func randomCrop(width imageWidth: Int, height imageHeight: Int, generator: inout SplitMix64) -> CropRegion {
        let area = Float(imageWidth * imageHeight)
        let logRatio = log(aspectRatio.lowerBound)...log(aspectRatio.upperBound)
        for _ in 0..<10 {
            let targetArea = area * generator.uniform(scale)
            let ratio = exp(generator.uniform(logRatio))
            let w = Int((targetArea * ratio).squareRoot().rounded())
            let h = Int((targetArea / ratio).squareRoot().rounded())
            if w > 0 && h > 0 && w <= imageWidth && h <= imageHeight {
                let x = generator.index(below: imageWidth - w + 1)
                let y = generator.index(below: imageHeight - h + 1)
                return CropRegion(x: x, y: y, width: w, height: h)
            }
        }
        let imageRatio = Float(imageWidth) / Float(imageHeight)
        var w = imageWidth, h = imageHeight
        if imageRatio < aspectRatio.lowerBound {
            h = max(1, min(imageHeight, Int((Float(w) / aspectRatio.lowerBound).rounded())))
        } else if imageRatio > aspectRatio.upperBound {
            w = max(1, min(imageWidth, Int((Float(h) * aspectRatio.upperBound).rounded())))
        }
        return CropRegion(x: (imageWidth - w) / 2, y: (imageHeight - h) / 2, width: w, height: h)
    }

    /// The crop to use: redrawn while the mask inside it is (nearly) empty.
    public func chooseCrop(for mask: PlanarImage, generator: inout SplitMix64) -> CropRegion {
        let outputArea = Float(width * height)
        for _ in 0..<max(1, attempts) {
            let region = randomCrop(width: mask.width, height: mask.height, generator: &generator)
            let mass = mask.sum(in: region) * outputArea / Float(region.width * region.height)
            if mass >= minimumMaskPixels { return region }
        }
        return CropRegion(x: 0, y: 0, width: mask.width, height: mask.height)
    }

    public func apply(to sample: Sample, generator: inout SplitMix64) -> Sample {
        let region = chooseCrop(for: sample.mask, generator: &generator)
        let flip = generator.chance(flipProbability)
        let cropped = sample.mapImages { image in
            let resized = image.cropped(to: region).resized(width: width, height: height, filter: filter)
            return flip ? resized.flippedHorizontally() : resized
        }
        var result = cropped
        if let change = colorJitter?.draw(generator: &generator) {
            let composite = GlobalColorJitter.apply(change, to: cropped.composite)
            result = Sample(
                reference: cropped.reference, composite: composite, mask: cropped.mask,
                target: cropped.compositeIsTarget ? composite : GlobalColorJitter.apply(change, to: cropped.target))
        }
        // a real photo before a fresh composite is made of it has no foreground change to replace
        if let backgroundShift, !result.compositeIsTarget,
            let change = backgroundShift.draw(generator: &generator)
        {
            result = BackgroundShift.sample(from: result, change: change)
        }
        return result
    }
}

/// Training samples whose foreground is already right in itself and whose scene changed around it:
/// the whole real image gets a random photo adjustment T (a `GlobalColorJitter` draw), the
/// foreground keeps its original colours, and the target is the adjusted image, so the change to
/// learn is "follow the background". In such a sample a foreground of unusual colour is not the
/// synthesizer's work, which weakens the pull of every foreground toward the mean foreground colour
/// of the training composites (docs/results.md, "Why every network moves a perfect composite"); at
/// p = 0.3 the pull's slope stayed, but the harm to a perfect composite halved ("Training samples
/// that break the pull").
public enum BackgroundShift {
    /// The background-shift sample of `sample`'s target:
    /// composite = m * target + (1 - m) * T(target), target = T(target); same mask and reference.
    /// - Parameters: sample: composite and target 3 x H x W, mask 1 x H x W in 0...1.
    public static func sample(from sample: Sample, change: GlobalColorJitter.Draw) -> Sample {
        let n = sample.mask.planeSize
        precondition(
            sample.target.planeSize == n && sample.target.channels == 3,
            "BackgroundShift.sample: target and mask differ in size")
        let shifted = GlobalColorJitter.apply(change, to: sample.target)
        var composite = shifted
        sample.mask.values.withUnsafeBufferPointer { mask in
            sample.target.values.withUnsafeBufferPointer { original in
                composite.values.withUnsafeMutableBufferPointer { out in
                    for c in 0..<3 {
                        for p in 0..<n where mask[p] > 0 {
                            let i = c * n + p
                            out[i] = mask[p] * original[i] + (1 - mask[p]) * out[i]
                        }
                    }
                }
            }
        }
        return Sample(reference: sample.reference, composite: composite, mask: sample.mask, target: shifted)
    }
}
