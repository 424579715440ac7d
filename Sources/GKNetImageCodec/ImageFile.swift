// Reading and writing image files: format detection by content, size limits checked before
// decoding, atomic writes (temporary file + rename).
import Foundation
import GKNetTensorCore

/// Limits and leniency of decoding.
public struct DecodeLimits: Sendable, Equatable {
    /// The largest width x height accepted (default 100 megapixels), checked from the header
    /// before any pixel is decoded.
    public var maximumPixels: Int
    /// Accept JPEG files on which libjpeg only warns (damaged entropy data that it papers over).
    /// Truncated files are rejected either way.
    public var allowsJPEGWarnings: Bool

    public init(maximumPixels: Int = 100_000_000, allowsJPEGWarnings: Bool = false) {
        self.maximumPixels = maximumPixels
        self.allowsJPEGWarnings = allowsJPEGWarnings
    }

    /// Throws `.zeroSize` or `.tooLarge` for a header's declared size.
    public func check(width: Int, height: Int, path: String) throws {
        guard width > 0, height > 0 else {
            throw ImageCodecError(path: path, kind: .zeroSize, detail: "header declares \(width)x\(height)")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= maximumPixels else {
            throw ImageCodecError(
                path: path, kind: .tooLarge,
                detail:
                    "\(width)x\(height) exceeds the limit of \(maximumPixels) pixels (raise it with the "
                    + "maximum-pixels option)"
            )
        }
    }
}

/// The file formats the codecs read and write.
public enum ImageFormat: String, Sendable, CaseIterable, Codable {
    case png, jpeg

    /// The format named by a file extension (png, jpg, jpeg; any case).
    public init?(pathExtension: String) {
        switch pathExtension.lowercased() {
        case "png": self = .png
        case "jpg", "jpeg": self = .jpeg
        default: return nil
        }
    }

    /// The format of encoded bytes, from their signature.
    public static func detect(_ bytes: UnsafeRawBufferPointer, path: String) throws -> ImageFormat {
        guard !bytes.isEmpty else { throw ImageCodecError(path: path, kind: .empty, detail: "0 bytes") }
        let b = Array(bytes.prefix(12))
        if b.count >= 8, Array(b[0..<8]) == PNGCodec.signature { return .png }
        if b.count >= 3, b[0] == 0xFF, b[1] == 0xD8, b[2] == 0xFF { return .jpeg }
        if b.count < 8 && PNGCodec.signature.starts(with: b) || b.count < 3 && [0xFF, 0xD8, 0xFF].starts(with: b) {
            throw ImageCodecError(path: path, kind: .truncated, detail: "only \(b.count) bytes")
        }
        let other: String? =
            b.count >= 12 && b[0..<4].elementsEqual("RIFF".utf8) && b[8..<12].elementsEqual("WEBP".utf8)
            ? "WebP"
            : b.count >= 4 && b[0..<4].elementsEqual("GIF8".utf8)
                ? "GIF"
                : b.count >= 2 && b[0..<2].elementsEqual("BM".utf8)
                    ? "BMP"
                    : b.count >= 4
                        && (b[0..<4].elementsEqual([0x49, 0x49, 0x2A, 0])
                            || b[0..<4].elementsEqual([0x4D, 0x4D, 0, 0x2A]))
                        ? "TIFF"
                        : nil
        if let other {
            throw ImageCodecError(
                path: path, kind: .unsupported, detail: "\(other) files are not read; convert to PNG or JPEG")
        }
        let hex = b.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw ImageCodecError(path: path, kind: .wrongMagic, detail: "starts with bytes \(hex)")
    }
}

/// Options of encoding.
public struct EncodeOptions: Sendable, Equatable {
    /// JPEG quality 1-100.
    public var quality: Int
    /// JPEG chroma subsampling.
    public var subsampling: ChromaSubsampling
    /// Write progressive JPEG.
    public var progressive: Bool
    /// PNG zlib level 0-9.
    public var pngCompressionLevel: Int

    public init(
        quality: Int = 95, subsampling: ChromaSubsampling = .none, progressive: Bool = false,
        pngCompressionLevel: Int = 6
    ) {
        self.quality = quality
        self.subsampling = subsampling
        self.progressive = progressive
        self.pngCompressionLevel = pngCompressionLevel
    }
}

/// Image files on disk.
public enum ImageFile {
    /// Decodes PNG or JPEG bytes (format found from the signature). `path` names the source in errors.
    public static func decode(_ data: Data, path: String, limits: DecodeLimits = DecodeLimits()) throws -> DecodedImage
    {
        let format = try data.withUnsafeBytes { try ImageFormat.detect($0, path: path) }
        switch format {
        case .png: return try PNGCodec.decode(data, path: path, limits: limits)
        case .jpeg: return try JPEGCodec.decode(data, path: path, limits: limits)
        }
    }

    /// Reads and decodes a file.
    public static func read(_ url: URL, limits: DecodeLimits = DecodeLimits()) throws -> DecodedImage {
        try decode(try contents(of: url), path: url.path, limits: limits)
    }

    /// Reads a file as 3-channel RGB in 0...1 (gray replicated, alpha ignored).
    public static func readRGB(_ url: URL, limits: DecodeLimits = DecodeLimits()) throws -> PlanarImage {
        PlanarImage(rgb: try read(url, limits: limits))
    }

    /// Reads a file as a 1-channel mask in 0...1 (see `MaskSource`).
    public static func readMask(_ url: URL, source: MaskSource = .first, limits: DecodeLimits = DecodeLimits()) throws
        -> PlanarImage
    {
        PlanarImage(mask: try read(url, limits: limits), source: source)
    }

    /// The bytes of a file; errors name it.
    static func contents(of url: URL) throws -> Data {
        do {
            return try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            let exists = FileManager.default.fileExists(atPath: url.path)
            throw ImageCodecError(
                path: url.path, kind: .unreadable, detail: exists ? "\(error.localizedDescription)" : "no such file")
        }
    }

    /// Encodes a decoded image in `format` (JPEG needs 8-bit samples; 16-bit images are rounded to 8 bits).
    public static func encode(
        _ image: DecodedImage, format: ImageFormat, options: EncodeOptions = EncodeOptions(), path: String = "<memory>"
    ) throws -> Data {
        switch (format, image) {
        case (.png, .eightBit(let raster)):
            return try PNGCodec.encode(raster, compressionLevel: options.pngCompressionLevel, path: path)
        case (.png, .sixteenBit(let raster)):
            return try PNGCodec.encode(raster, compressionLevel: options.pngCompressionLevel, path: path)
        case (.jpeg, .eightBit(let raster)):
            return try JPEGCodec.encode(
                raster, quality: options.quality, subsampling: options.subsampling, progressive: options.progressive,
                path: path)
        case (.jpeg, .sixteenBit(let raster)):
            let eight = RasterImage8(
                width: raster.width, height: raster.height, layout: raster.layout,
                samples: raster.samples.map { UInt8((UInt32($0) * 255 + 32767) / 65535) })
            return try JPEGCodec.encode(
                eight, quality: options.quality, subsampling: options.subsampling, progressive: options.progressive,
                path: path)
        }
    }

    /// Writes an image atomically (temporary file in the same folder, then rename), in the format
    /// given or named by the file extension.
    public static func write(
        _ image: DecodedImage, to url: URL, format: ImageFormat? = nil, options: EncodeOptions = EncodeOptions()
    ) throws {
        guard let format = format ?? ImageFormat(pathExtension: url.pathExtension) else {
            throw ImageCodecError(
                path: url.path, kind: .writeFailed,
                detail: "unknown extension \".\(url.pathExtension)\" (use .png, .jpg or .jpeg)")
        }
        let data = try encode(image, format: format, options: options, path: url.path)
        do {
            try AtomicFile.write(data, to: url)
        } catch {
            throw ImageCodecError(path: url.path, kind: .writeFailed, detail: "\(error)")
        }
    }

    /// Writes an 8-bit raster (see `write(_:to:format:options:)`).
    public static func write(
        _ image: RasterImage8, to url: URL, format: ImageFormat? = nil, options: EncodeOptions = EncodeOptions()
    ) throws {
        try write(.eightBit(image), to: url, format: format, options: options)
    }

    /// Writes a 16-bit raster (see `write(_:to:format:options:)`).
    public static func write(
        _ image: RasterImage16, to url: URL, format: ImageFormat? = nil, options: EncodeOptions = EncodeOptions()
    ) throws {
        try write(.sixteenBit(image), to: url, format: format, options: options)
    }

    /// Writes a float image quantized to 8 bits (1 channel gray, 3 RGB).
    public static func write(
        _ image: PlanarImage, to url: URL, format: ImageFormat? = nil, options: EncodeOptions = EncodeOptions()
    ) throws {
        try write(.eightBit(image.raster8()), to: url, format: format, options: options)
    }
}
