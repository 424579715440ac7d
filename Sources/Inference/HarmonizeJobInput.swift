// Reading a user's composite and mask for `gknet harmonize`: every input problem becomes a one-line
// error naming the file, or a documented behaviour (docs in README "Usage" and the command help).
//
// Composite: PNG or JPEG, 8 or 16 bits, gray / gray+alpha / RGB / RGBA. Gray is used as RGB; an
// alpha channel is not used for harmonizing (the colour values are) and is copied to the output
// unchanged; a 16-bit composite gives a 16-bit output.
// Mask: white (1) = the region to harmonize, black (0) = background, values between = soft edge
// (used as the blending weight, never thresholded). Gray masks are read as they are; colour masks
// whose three channels agree likewise, otherwise the brightest channel of each pixel is used; a
// mask with transparency (any alpha below opaque) is read from its alpha channel. JPEG masks have
// values within 3/255 of black or white snapped to 0 or 1 (JPEG ringing would otherwise tint the
// background).
import Foundation
import ImageCodec
import TensorCore

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
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ImageCodecError(path: url.path, kind: .unreadable, detail: "is a folder, not an image file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw ImageCodecError(
                path: url.path, kind: .unreadable, detail: exists ? "permission denied or read error" : "no such file")
        }
        let format = try data.withUnsafeBytes { try ImageFormat.detect($0, path: url.path) }
        return (try ImageFile.decode(data, path: url.path, limits: limits), format)
    }

    /// The composite as 3 planes in 0...1 (gray replicated); 8-bit files through a 256-entry table, in parallel.
    public static func rgbPlanes(of image: DecodedImage) -> PlanarImage {
        guard case .eightBit(let raster) = image else { return PlanarImage(rgb: image) }
        let pixels = raster.width * raster.height, step = raster.layout.channels
        let table: [Float] = (0..<256).map { Float($0) / 255 }
        let colour = raster.layout.isColor
        let values = [Float](unsafeUninitializedCapacity: 3 * pixels) { buffer, initialized in
            let out = buffer.baseAddress!
            raster.samples.withUnsafeBufferPointer { s in
                table.withUnsafeBufferPointer { lookup in
                    parallelChunks(pixels, minimumPerThread: 1 << 16) { range in
                        for p in range {
                            let r = lookup[Int(s[p * step])]
                            out[p] = r
                            out[pixels + p] = colour ? lookup[Int(s[p * step + 1])] : r
                            out[2 * pixels + p] = colour ? lookup[Int(s[p * step + 2])] : r
                        }
                    }
                }
            }
            initialized = 3 * pixels
        }
        return PlanarImage(width: raster.width, height: raster.height, channels: 3, values: values)
    }

    /// The alpha channel of a gray+alpha or RGBA image as a 1-channel plane in 0...1.
    public static func alphaPlane(of image: DecodedImage) -> PlanarImage {
        PlanarImage(mask: image, source: .alpha)
    }

    /// The mask plane of a decoded mask file (rules in the file header) and a note when the
    /// reading is not the obvious one.
    public static func maskPlane(of image: DecodedImage, snapsJPEGRinging: Bool) -> (PlanarImage, String?) {
        var (plane, note): (PlanarImage, String?)
        switch image {
        case .eightBit(let raster): (plane, note) = maskPlane(of: raster)
        case .sixteenBit(let raster): (plane, note) = maskPlane(of: raster)
        }
        if snapsJPEGRinging {
            let low: Float = 3.5 / 255, high: Float = 1 - 3.5 / 255
            for i in plane.values.indices {
                let v = plane.values[i]
                if v < low { plane.values[i] = 0 } else if v > high { plane.values[i] = 1 }
            }
        }
        return (plane, note)
    }

    static func maskPlane<Sample>(of raster: RasterImage<Sample>) -> (PlanarImage, String?) {
        let step = raster.layout.channels
        let pixels = raster.width * raster.height
        let scale = 1 / RasterImage<Sample>.maximum
        let usesAlpha =
            raster.layout.hasAlpha
            && raster.samples.withUnsafeBufferPointer { s in
                (0..<pixels).contains { s[$0 * step + step - 1] != Sample.max }
            }
        let isColor = raster.layout.isColor && !usesAlpha
        let chunks = max(1, Threading.count)
        var colouredChunks = [Bool](repeating: false, count: chunks)
        let values = [Float](unsafeUninitializedCapacity: pixels) { buffer, initialized in
            let out = buffer.baseAddress!
            raster.samples.withUnsafeBufferPointer { s in
                colouredChunks.withUnsafeMutableBufferPointer { coloured in
                    parallelChunks(chunks, minimumPerThread: 1) { chunkRange in
                        for chunk in chunkRange {
                            let range = chunk * pixels / chunks..<(chunk + 1) * pixels / chunks
                            if usesAlpha {
                                for p in range {
                                    out[p] = Float(UInt32(truncatingIfNeeded: s[p * step + step - 1])) * scale
                                }
                            } else if isColor {
                                var differs = false
                                for p in range {
                                    let r = s[p * step], g = s[p * step + 1], b = s[p * step + 2]
                                    differs = differs || r != g || g != b
                                    out[p] = Float(UInt32(truncatingIfNeeded: max(r, max(g, b)))) * scale
                                }
                                coloured[chunk] = differs
                            } else {
                                for p in range { out[p] = Float(UInt32(truncatingIfNeeded: s[p * step])) * scale }
                            }
                        }
                    }
                }
            }
            initialized = pixels
        }
        let plane = PlanarImage(width: raster.width, height: raster.height, channels: 1, values: values)
        if usesAlpha { return (plane, "mask has transparency: its alpha channel is used as the mask") }
        return (
            plane,
            colouredChunks.contains(true)
                ? "mask is in colour: the brightest channel of each pixel is used (white marks the region to harmonize)"
                : nil
        )
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
