// PNG through libpng (the setjmp-guarded helpers in Sources/CGKNetPNG/gk_png.h).
import CGKNetPNG
import Foundation

/// PNG decoding and encoding.
public enum PNGCodec {
    /// The 8-byte PNG signature.
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// Width and height from the IHDR chunk, read before libpng sees the data so that size
    /// limits are enforced before any decoding or allocation.
    static func headerSize(_ bytes: UnsafeBufferPointer<UInt8>, path: String) throws -> (width: Int, height: Int) {
        // signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4)
        guard bytes.count >= 24 else {
            throw ImageCodecError(
                path: path, kind: .truncated, detail: "PNG ends inside its header (\(bytes.count) bytes)")
        }
        func bigEndian(_ offset: Int) -> Int {
            Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8
                | Int(bytes[offset + 3])
        }
        guard bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else {
            throw ImageCodecError(path: path, kind: .corrupt, detail: "PNG does not start with an IHDR chunk")
        }
        return (bigEndian(16), bigEndian(20))
    }

    /// Decodes PNG bytes. Palettes, gray below 8 bits and `tRNS` transparency are expanded; samples
    /// are otherwise returned as stored (no gamma handling), 16-bit files as `.sixteenBit`.
    public static func decode(_ data: Data, path: String, limits: DecodeLimits = DecodeLimits()) throws -> DecodedImage
    {
        try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let size = try headerSize(bytes, path: path)
            try limits.check(width: size.width, height: size.height, path: path)

            var info = gk_png_info()
            guard gk_png_decode(bytes.baseAddress, bytes.count, nil, 0, &info) == 0 else {
                throw error(from: info, path: path)
            }
            guard let layout = PixelLayout(channels: Int(info.channels)), info.bit_depth == 8 || info.bit_depth == 16
            else {
                throw ImageCodecError(
                    path: path, kind: .unsupported,
                    detail: "PNG with \(info.channels) channels of \(info.bit_depth) bits after expansion")
            }
            let width = Int(info.width), height = Int(info.height)
            let sampleCount = width * height * layout.channels
            if info.bit_depth == 16 {
                var samples = [UInt16](repeating: 0, count: sampleCount)
                let status = samples.withUnsafeMutableBytes { out in
                    gk_png_decode(
                        bytes.baseAddress, bytes.count, out.bindMemory(to: UInt8.self).baseAddress, out.count, &info)
                }
                guard status == 0 else { throw error(from: info, path: path) }
                return .sixteenBit(RasterImage(width: width, height: height, layout: layout, samples: samples))
            } else {
                var samples = [UInt8](repeating: 0, count: sampleCount)
                let status = samples.withUnsafeMutableBufferPointer { out in
                    gk_png_decode(bytes.baseAddress, bytes.count, out.baseAddress, out.count, &info)
                }
                guard status == 0 else { throw error(from: info, path: path) }
                return .eightBit(RasterImage(width: width, height: height, layout: layout, samples: samples))
            }
        }
    }

    /// Encodes an 8-bit or 16-bit raster (any layout) as PNG. `compressionLevel` is zlib's 0-9.
    public static func encode<Sample>(
        _ image: RasterImage<Sample>, compressionLevel: Int = 6, path: String = "<memory>"
    ) throws -> Data {
        guard image.width > 0, image.height > 0 else {
            throw ImageCodecError(
                path: path, kind: .writeFailed, detail: "cannot encode a \(image.width)x\(image.height) image")
        }
        var info = gk_png_info()
        var buffer = gk_png_buffer()
        let status = image.samples.withUnsafeBytes { raw in
            gk_png_encode(
                raw.bindMemory(to: UInt8.self).baseAddress, UInt32(image.width), UInt32(image.height),
                Int32(image.layout.channels), Int32(Sample.bitWidth), Int32(min(max(compressionLevel, 0), 9)),
                &buffer, &info)
        }
        defer { free(buffer.data) }
        guard status == 0, let bytes = buffer.data else {
            throw ImageCodecError(path: path, kind: .writeFailed, detail: "PNG encoder: \(message(info))")
        }
        return Data(bytes: bytes, count: buffer.size)
    }

    /// The libpng message of a failed call.
    static func message(_ info: gk_png_info) -> String {
        withUnsafeBytes(of: info.message) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[0..<end], as: UTF8.self)
        }
    }

    /// Classifies a libpng failure.
    static func error(from info: gk_png_info, path: String) -> ImageCodecError {
        let text = message(info)
        let lower = text.lowercased()
        let kind: ImageCodecError.Kind
        if lower.contains("truncated") || lower.contains("not enough image data") || lower.contains("end of file") {
            kind = .truncated
        } else if lower.contains("zero") && lower.contains("ihdr") {
            kind = .zeroSize
        } else {
            kind = .corrupt
        }
        return ImageCodecError(path: path, kind: kind, detail: "libpng: \(text)")
    }
}
