// JPEG through the TurboJPEG API of libjpeg-turbo, which reports errors as return values (the
// classic libjpeg API would call exit() on a damaged file unless setjmp is used).
import CGKNetJPEG
import Foundation

/// Chroma subsampling of an encoded JPEG.
public enum ChromaSubsampling: String, Sendable, Codable, CaseIterable {
    case none = "444", horizontal = "422", both = "420"

    var turboJPEG: Int32 {
        switch self {
        case .none: Int32(TJSAMP_444.rawValue)
        case .horizontal: Int32(TJSAMP_422.rawValue)
        case .both: Int32(TJSAMP_420.rawValue)
        }
    }
}

/// JPEG decoding and encoding.
public enum JPEGCodec {
    /// Decodes JPEG bytes: baseline or progressive, YCbCr/RGB as RGB, grayscale as gray, CMYK and
    /// YCCK converted to RGB the way Pillow does (Adobe's inverted CMYK convention). The EXIF
    /// orientation is applied unless `applyOrientation` is false.
    ///
    /// Any libjpeg warning (damaged data that the library would paper over) is an error unless
    /// `limits.allowsJPEGWarnings`; a truncated file always is.
    public static func decode(
        _ data: Data, path: String, limits: DecodeLimits = DecodeLimits(), applyOrientation: Bool = true
    ) throws -> DecodedImage {
        guard let handle = tjInitDecompress() else {
            throw ImageCodecError(path: path, kind: .unreadable, detail: "cannot create a TurboJPEG decompressor")
        }
        defer { tjDestroy(handle) }
        return try data.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            guard let base = bytes.baseAddress else { throw ImageCodecError(path: path, kind: .empty, detail: "") }
            var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
            if tjDecompressHeader3(handle, base, UInt(bytes.count), &width, &height, &subsampling, &colorspace) != 0 {
                let failure = error(handle, path: path, stage: "header")
                // a damaged-looking header in a file without its end marker is a cut file
                if failure.kind == .corrupt && !endsWithEndOfImage(bytes) {
                    throw ImageCodecError(
                        path: path, kind: .truncated,
                        detail: failure.detail + " (no end-of-image marker: the file is cut short)")
                }
                throw failure
            }
            if width == 0 || height == 0 {
                // libjpeg ends a short file with a fake end-of-image marker: no frame header was seen
                throw ImageCodecError(
                    path: path, kind: endsWithEndOfImage(bytes) ? .corrupt : .truncated,
                    detail: "no frame header (SOF) before the data ends")
            }
            try limits.check(width: Int(width), height: Int(height), path: path)

            let isCMYK = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let isGray = colorspace == Int32(TJCS_GRAY.rawValue)
            let (format, channels): (TJPF, Int) = isGray ? (TJPF_GRAY, 1) : isCMYK ? (TJPF_CMYK, 4) : (TJPF_RGB, 3)
            var samples = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
            // LIMITSCANS: a progressive file of more than 500 scans is refused (a few KB of them
            // could otherwise hold the decoder for minutes)
            let flags =
                TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS | (limits.allowsJPEGWarnings ? 0 : TJFLAG_STOPONWARNING)
            let status = samples.withUnsafeMutableBufferPointer { out in
                tjDecompress2(
                    handle, base, UInt(bytes.count), out.baseAddress, width, 0, height, Int32(format.rawValue), flags)
            }
            if status != 0 {
                let failure = error(handle, path: path, stage: "data")
                let isWarning = tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
                if !(limits.allowsJPEGWarnings && isWarning && failure.kind != .truncated) { throw failure }
            }
            var image = RasterImage(
                width: Int(width), height: Int(height), layout: isGray ? .gray : .rgb,
                samples: isCMYK ? rgb(fromInvertedCMYK: samples) : samples)
            if applyOrientation { image = ExifOrientation.inJPEG(bytes).apply(to: image) }
            return .eightBit(image)
        }
    }

    /// Whether an end-of-image marker (FF D9) is among the last 4 KiB (writers may pad after it).
    static func endsWithEndOfImage(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let start = max(0, bytes.count - 4096)
        guard bytes.count >= 2 else { return false }
        for i in stride(from: bytes.count - 2, through: start, by: -1) where bytes[i] == 0xFF && bytes[i + 1] == 0xD9 {
            return true
        }
        return false
    }

    /// CMYK samples as libjpeg returns them from an Adobe file (stored inverted: 255 = no ink) to
    /// RGB, with Pillow's arithmetic: R = (255 - C) - (255 - C) * K / 255 rounded, where C and K are
    /// the ink amounts (255 minus the stored samples).
    static func rgb(fromInvertedCMYK cmyk: [UInt8]) -> [UInt8] {
        let pixels = cmyk.count / 4
        var out = [UInt8](repeating: 0, count: pixels * 3)
        for p in 0..<pixels {
            let notBlack = Int(cmyk[p * 4 + 3])  // 255 - K
            for c in 0..<3 {
                let ink = 255 - Int(cmyk[p * 4 + c])
                let t = ink * notBlack + 128  // MULDIV255(ink, notBlack)
                let product = ((t >> 8) + t) >> 8
                out[p * 3 + c] = UInt8(clamping: notBlack - product)
            }
        }
        return out
    }

    /// Encodes an 8-bit gray or RGB raster (alpha channels are dropped) as JPEG.
    /// - Parameters:
    ///   - quality: 1-100.
    ///   - subsampling: chroma subsampling of colour images (gray images have no chroma).
    ///   - progressive: write a progressive JPEG.
    public static func encode(
        _ image: RasterImage8, quality: Int = 95, subsampling: ChromaSubsampling = .none,
        progressive: Bool = false, path: String = "<memory>"
    ) throws -> Data {
        guard image.width > 0, image.height > 0 else {
            throw ImageCodecError(
                path: path, kind: .writeFailed, detail: "cannot encode a \(image.width)x\(image.height) image")
        }
        guard let handle = tjInitCompress() else {
            throw ImageCodecError(path: path, kind: .writeFailed, detail: "cannot create a TurboJPEG compressor")
        }
        defer { tjDestroy(handle) }
        let format: TJPF
        let source: [UInt8]
        switch image.layout {
        case .gray: (format, source) = (TJPF_GRAY, image.samples)
        case .grayAlpha:
            (format, source) = (TJPF_GRAY, stride(from: 0, to: image.samples.count, by: 2).map { image.samples[$0] })
        case .rgb: (format, source) = (TJPF_RGB, image.samples)
        case .rgba: (format, source) = (TJPF_RGBX, image.samples)
        }
        let chroma = format == TJPF_GRAY ? Int32(TJSAMP_GRAY.rawValue) : subsampling.turboJPEG
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let flags = TJFLAG_ACCURATEDCT | (progressive ? TJFLAG_PROGRESSIVE : 0)
        let status = source.withUnsafeBufferPointer { pixels in
            tjCompress2(
                handle, pixels.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(format.rawValue),
                &output, &size, chroma, Int32(min(max(quality, 1), 100)), flags)
        }
        defer { if let output { tjFree(output) } }
        guard status == 0, let output else {
            throw ImageCodecError(
                path: path, kind: .writeFailed, detail: "TurboJPEG: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return Data(bytes: output, count: Int(size))
    }

    /// Classifies a TurboJPEG failure by its message.
    static func error(_ handle: tjhandle, path: String, stage: String) -> ImageCodecError {
        let text = String(cString: tjGetErrorStr2(handle))
        let lower = text.lowercased()
        let kind: ImageCodecError.Kind
        if lower.contains("corrupt jpeg data") {
            kind = .corrupt  // "Corrupt JPEG data: premature end of data segment" is damage, not a short file
        } else if lower.contains("premature end") {
            kind = .truncated
        } else if lower.contains("not a jpeg") {
            kind = .wrongMagic
        } else if lower.contains("empty jpeg") {
            kind = .zeroSize
        } else if lower.contains("unsupported") || lower.contains("not supported") {
            kind = .unsupported
        } else {
            kind = .corrupt
        }
        return ImageCodecError(path: path, kind: kind, detail: "libjpeg-turbo (\(stage)): \(text)")
    }
}
