// Reading a user's composite and mask for a harmonize job: every input problem becomes a one-line
// error naming the file, or a documented behaviour (docs in README "Usage" and the command help).
// The reading rules themselves (alpha, colour masks, 16 bits, JPEG masks) are ImageCodec's
// (`PlanarImage(rgb:)`, `PlanarImage.userMask`); this file adds the checks of a job (mask size,
// empty or suspicious masks).
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// A problem with the files of a harmonize job: one line naming the file.
public struct HarmonizeError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Settings of a harmonize job.
public struct HarmonizeOptions: Sendable {
    /// Resize a mask whose size differs from the composite's (otherwise that is an error).
    public var resizeMask = false
    /// What the mask-size error advises (the CLI names its flag; the web service says what to send).
    public var maskSizeAdvice = "pass --resize-mask to resize it"
    /// Decode limits (largest image in pixels).
    public var limits = DecodeLimits()
    /// zlib level of PNG outputs (1 = fast: zlib's run-length strategy, which on filtered photos
    /// compresses about as well as level 6; 2-9 = zlib's levels).
    public var pngCompressionLevel = 1
    /// Longest side of each panel of a comparison sheet.
    public var comparisonPanelSide = 512
    /// Method, affine settings and change scale of the harmonization; nil = the harmonizer's own.
    public var harmonization: Harmonizer.Options?
    public init() {}
}

/// A composite and mask ready for the network, with what is needed to write the output like the input.
public struct HarmonizeInput: Sendable {
    /// 3 x H x W RGB in 0...1.
    public var composite: PlanarImage
    /// 1 x H x W in 0...1 (soft values kept).
    public var mask: PlanarImage
    /// The composite's own alpha channel (1 x H x W), copied to the output; nil when it has none.
    public var alpha: PlanarImage?
    /// 8 or 16: the composite's bit depth, which the output keeps.
    public var bitDepth: Int
    /// Share of the image the mask covers (mean of the mask).
    public var foregroundRatio: Double
    /// Notes for the user about how the inputs were read (printed as warnings).
    public var warnings: [String]

    public init(
        composite: PlanarImage, mask: PlanarImage, alpha: PlanarImage?, bitDepth: Int, foregroundRatio: Double,
        warnings: [String]
    ) {
        self.composite = composite
        self.mask = mask
        self.alpha = alpha
        self.bitDepth = bitDepth
        self.foregroundRatio = foregroundRatio
        self.warnings = warnings
    }
}

extension HarmonizeJob {
    /// Reads and checks a composite and its mask.
    /// - Throws: `ImageCodecError` (unreadable, corrupt, truncated, too large...) or `HarmonizeError`
    ///   (mask size, empty mask), each one line naming the file.
    public static func readInput(
        composite compositeURL: URL, mask maskURL: URL, options: HarmonizeOptions = HarmonizeOptions()
    ) throws -> HarmonizeInput {
        let (compositeImage, _) = try decode(compositeURL, limits: options.limits)
        let (maskImage, maskFormat) = try decode(maskURL, limits: options.limits)
        return try input(
            compositeImage: compositeImage, compositeName: compositeURL.path, maskImage: maskImage,
            maskFormat: maskFormat,
            maskName: maskURL.path, options: options)
    }

    /// `readInput` for encoded images in memory (an upload); `compositeName` and `maskName` stand
    /// for the files in messages.
    public static func readInput(
        compositeData: Data, compositeName: String, maskData: Data, maskName: String,
        options: HarmonizeOptions = HarmonizeOptions()
    ) throws -> HarmonizeInput {
        let compositeImage = try ImageFile.decode(compositeData, path: compositeName, limits: options.limits)
        let maskFormat = try maskData.withUnsafeBytes { try ImageFormat.detect($0, path: maskName) }
        let maskImage = try ImageFile.decode(maskData, path: maskName, limits: options.limits)
        return try input(
            compositeImage: compositeImage, compositeName: compositeName, maskImage: maskImage, maskFormat: maskFormat,
            maskName: maskName, options: options)
    }

    static func input(
        compositeImage: DecodedImage, compositeName: String, maskImage: DecodedImage, maskFormat: ImageFormat,
        maskName: String,
        options: HarmonizeOptions
    ) throws -> HarmonizeInput {
        var warnings: [String] = []
        let composite = rgbPlanes(of: compositeImage)
        let alpha: PlanarImage? = compositeImage.layout.hasAlpha ? alphaPlane(of: compositeImage) : nil
        var (mask, note) = maskPlane(of: maskImage, snapsJPEGRinging: maskFormat == .jpeg)
        if let note { warnings.append("\(maskName): \(note)") }

        if mask.width != composite.width || mask.height != composite.height {
            let sizes =
                "mask is \(mask.width)x\(mask.height) but composite \(compositeName) is "
                + "\(composite.width)x\(composite.height)"
            guard options.resizeMask else {
                let hint =
                    mask.width == composite.height && mask.height == composite.width
                    ? " (rotated? check the EXIF orientation)" : ""
                throw HarmonizeError("\(maskName): \(sizes)\(hint); \(options.maskSizeAdvice)")
            }
            let maskAspect = Double(mask.width) / Double(mask.height),
                compositeAspect = Double(composite.width) / Double(composite.height)
            let stretch = abs(maskAspect / compositeAspect - 1) > 0.01 ? " (aspect ratio differs: stretched)" : ""
            warnings.append("\(maskName): \(sizes); resized to fit\(stretch)")
            mask = mask.resized(width: composite.width, height: composite.height, filter: .automatic).clamped()
        }
        return try checkedInput(
            composite: composite, mask: mask, alpha: alpha, bitDepth: compositeImage.bitDepth, maskName: maskName,
            warnings: warnings)
    }

    /// Checks a mask of the composite's size (it must have a foreground) and notes masks that look
    /// wrong (covering everything or nearly, or faint).
    /// - Throws: `HarmonizeError` for an empty mask.
    public static func checkedInput(
        composite: PlanarImage, mask: PlanarImage, alpha: PlanarImage?, bitDepth: Int, maskName: String,
        warnings: [String]
    ) throws -> HarmonizeInput {
        var warnings = warnings
        let coverage = maskCoverage(mask)
        guard coverage.maximum > 0 else {
            throw HarmonizeError(
                "\(maskName): mask has no foreground (every pixel is black; white marks the region to harmonize)")
        }
        if coverage.background == 0 {
            warnings.append(
                "\(maskName): mask covers the whole image: there is no background to match, so the result is the "
                    + "network's guess (white marks the region to harmonize)"
            )
        } else if coverage.ratio > 0.9 {
            warnings.append(
                String(
                    format:
                        "%@: mask covers %.0f %% of the image (white marks the region to harmonize): check that it is "
                        + "not inverted",
                    maskName, coverage.ratio * 100))
        }
        if coverage.maximum < 0.5 {
            warnings.append(
                String(
                    format:
                        "%@: mask is faint (brightest value %.2f): soft values are blending weights, so the change is "
                        + "at most %.0f %%",
                    maskName, coverage.maximum, coverage.maximum * 100))
        }
        return HarmonizeInput(
            composite: composite, mask: mask, alpha: alpha, bitDepth: bitDepth, foregroundRatio: coverage.ratio,
            warnings: warnings)
    }

    /// Reads the file once, finds its format from its bytes, decodes it; errors name the file.
    static func decode(_ url: URL, limits: DecodeLimits) throws -> (DecodedImage, ImageFormat) {
        try ImageFile.readWithFormat(url, limits: limits)
    }

    /// The composite as 3 planes in 0...1 (`PlanarImage(rgb:)`: gray replicated, alpha ignored).
    public static func rgbPlanes(of image: DecodedImage) -> PlanarImage {
        PlanarImage(rgb: image)
    }

    /// The alpha channel of a gray+alpha or RGBA image as a 1-channel plane in 0...1.
    public static func alphaPlane(of image: DecodedImage) -> PlanarImage {
        PlanarImage(mask: image, source: .alpha)
    }

    /// The mask plane of a decoded mask file (`PlanarImage.userMask`) and a note when the
    /// reading is not the obvious one.
    public static func maskPlane(of image: DecodedImage, snapsJPEGRinging: Bool) -> (PlanarImage, String?) {
        let read = PlanarImage.userMask(image, format: snapsJPEGRinging ? .jpeg : .png)
        return (read.mask, read.note)
    }

    /// Mean, largest value, and the count of background pixels (mask < 0.5).
    static func maskCoverage(_ mask: PlanarImage) -> (ratio: Double, maximum: Float, background: Int) {
        let chunks = max(1, Threading.count)
        var partial = [(sum: Double, maximum: Float, background: Int)](repeating: (0, 0, 0), count: chunks)
        let count = mask.values.count
        mask.values.withUnsafeBufferPointer { values in
            partial.withUnsafeMutableBufferPointer { partial in
                parallelChunks(chunks, minimumPerThread: 1) { chunkRange in
                    for chunk in chunkRange {
                        var sum: Float = 0, total = 0.0, maximum: Float = 0, background = 0
                        for (index, p) in (chunk * count / chunks..<(chunk + 1) * count / chunks).enumerated() {
                            let v = values[p]
                            sum += v
                            maximum = max(maximum, v)
                            background += v < 0.5 ? 1 : 0
                            if index & 4095 == 4095 {
                                total += Double(sum)
                                sum = 0
                            }  // float partial sums stay exact enough
                        }
                        partial[chunk] = (total + Double(sum), maximum, background)
                    }
                }
            }
        }
        let sum = partial.reduce(0.0) { $0 + $1.sum }
        return (
            sum / Double(max(1, count)), partial.map(\.maximum).max() ?? 0, partial.reduce(0) { $0 + $1.background }
        )
    }
}
