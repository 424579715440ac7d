// How a user's files become the planes a harmonizer works on: the one set of reading rules that
// every harmonize path uses (the command line, the library, the web service).
//
// Composite: PNG or JPEG (EXIF orientation applied by the decoder), 8 or 16 bits, gray / gray+alpha
// / RGB / RGBA. Gray is used as RGB; an alpha channel is not used for harmonizing (the colour
// values are): `PlanarImage(rgb:)`, with the alpha plane apart (`PlanarImage(mask:source: .alpha)`).
// Mask: white (1) = the region to harmonize, black (0) = background, values between = soft edge
// (a blending weight, never thresholded). Gray masks are read as they are; colour masks whose three
// channels agree likewise, otherwise the brightest channel of each pixel is used; a mask with
// transparency (any alpha below opaque) is read from its alpha channel. JPEG masks have values
// within 3/255 of black or white snapped to 0 or 1 (JPEG ringing would otherwise tint the
// background).
import Foundation
import GKNetTensorCore

/// A user's mask as read by `PlanarImage.userMask`: the plane, and a note when the reading is not
/// the obvious one (transparency used, colour mask).
public struct UserMask: Sendable {
    /// 1 x H x W in 0...1.
    public var mask: PlanarImage
    /// A sentence for the user, or nil.
    public var note: String?
}

extension PlanarImage {
    /// A user's mask from a decoded file (rules in the file header); `format` is the file's
    /// format (JPEG masks have their ringing near black and white snapped).
    public static func userMask(_ image: DecodedImage, format: ImageFormat) -> UserMask {
        var read: UserMask
        switch image {
        case .eightBit(let raster): read = userMask(raster)
        case .sixteenBit(let raster): read = userMask(raster)
        }
        if format == .jpeg {
            let low: Float = 3.5 / 255, high: Float = 1 - 3.5 / 255
            for i in read.mask.values.indices {
                let v = read.mask.values[i]
                if v < low { read.mask.values[i] = 0 } else if v > high { read.mask.values[i] = 1 }
            }
        }
        return read
    }

    /// A user's mask from a raster (no JPEG snapping): alpha when any pixel is transparent,
    /// otherwise the brightest channel.
    public static func userMask<Sample>(_ raster: RasterImage<Sample>) -> UserMask {
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
        if usesAlpha {
            return UserMask(mask: plane, note: "mask has transparency: its alpha channel is used as the mask")
        }
        return UserMask(
            mask: plane,
            note: colouredChunks.contains(true)
                ? "mask is in colour: the brightest channel of each pixel is used (white marks the region to harmonize)"
                : nil)
    }
}

extension ImageFile {
    /// Reads a file once, finds its format from its bytes and decodes it; errors name the file (a
    /// folder, a missing or unreadable file, a corrupt image).
    public static func readWithFormat(_ url: URL, limits: DecodeLimits = DecodeLimits()) throws -> (
        image: DecodedImage, format: ImageFormat
    ) {
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
        return (try decode(data, path: url.path, limits: limits), format)
    }
}
