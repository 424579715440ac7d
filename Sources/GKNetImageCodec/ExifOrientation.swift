// The EXIF orientation tag of a JPEG (APP1 "Exif"), read without a library, and its application
// to decoded pixels.

/// EXIF orientation 1-8: how the stored pixels must be turned to display upright.
public enum ExifOrientation: Int, Sendable {
    case up = 1  // as stored
    case upMirrored = 2  // flip left-right
    case down = 3  // rotate 180
    case downMirrored = 4  // flip top-bottom
    case leftMirrored = 5  // transpose (swap x and y)
    case right = 6  // rotate 90 degrees clockwise
    case rightMirrored = 7  // transverse (mirror over the anti-diagonal)
    case left = 8  // rotate 90 degrees counter-clockwise

    /// Whether width and height swap.
    public var swapsAxes: Bool { rawValue >= 5 }

    /// The orientation in a JPEG's APP1 Exif segment; `.up` when there is none or it is malformed
    /// (a damaged EXIF block never fails a decode).
    public static func inJPEG(_ bytes: UnsafeBufferPointer<UInt8>) -> ExifOrientation {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return .up }
        var offset = 2
        while offset + 4 <= bytes.count {
            guard bytes[offset] == 0xFF else { return .up }
            let marker = bytes[offset + 1]
            if marker == 0xFF {
                offset += 1
                continue
            }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) {
                offset += 2
                continue
            }
            if marker == 0xDA || marker == 0xD9 { return .up }  // start of scan / end of image: no EXIF before
            let length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            guard length >= 2, offset + 2 + length <= bytes.count else { return .up }
            if marker == 0xE1 {
                let segment = UnsafeBufferPointer(rebasing: bytes[(offset + 4)..<(offset + 2 + length)])
                if let orientation = inExifPayload(segment) { return orientation }
            }
            offset += 2 + length
        }
        return .up
    }

    /// Parses "Exif\0\0" + TIFF header + IFD0 and returns tag 0x0112 if present and valid.
    static func inExifPayload(_ p: UnsafeBufferPointer<UInt8>) -> ExifOrientation? {
        let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]  // "Exif\0\0"
        guard p.count >= 14, Array(p[0..<6]) == exifHeader else { return nil }
        let tiff = 6
        let littleEndian: Bool
        switch (p[tiff], p[tiff + 1]) {
        case (0x49, 0x49): littleEndian = true  // "II"
        case (0x4D, 0x4D): littleEndian = false  // "MM"
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= p.count else { return nil }
            return littleEndian ? Int(p[at]) | Int(p[at + 1]) << 8 : Int(p[at]) << 8 | Int(p[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let low = u16(littleEndian ? at : at + 2), let high = u16(littleEndian ? at + 2 : at) else {
                return nil
            }
            return high << 16 | low
        }
        guard u16(tiff + 2) == 42, let ifd = u32(tiff + 4), let entries = u16(tiff + ifd) else { return nil }
        for entry in 0..<entries {
            let at = tiff + ifd + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112 {
                guard u16(at + 2) == 3, let value = u16(at + 8) else { return nil }  // type SHORT
                return ExifOrientation(rawValue: value)
            }
        }
        return nil
    }

    /// The stored pixels turned upright.
    public func apply<Sample>(to image: RasterImage<Sample>) -> RasterImage<Sample> {
        if self == .up { return image }
        let w = image.width, h = image.height, c = image.layout.channels
        let outWidth = swapsAxes ? h : w, outHeight = swapsAxes ? w : h
        var out = [Sample](repeating: 0, count: image.samples.count)
        image.samples.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        // output (x, y) shows stored pixel (sx, sy)
                        let (sx, sy): (Int, Int)
                        switch self {
                        case .up: (sx, sy) = (x, y)
                        case .upMirrored: (sx, sy) = (w - 1 - x, y)
                        case .down: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case .downMirrored: (sx, sy) = (x, h - 1 - y)
                        case .leftMirrored: (sx, sy) = (y, x)
                        case .right: (sx, sy) = (y, h - 1 - x)
                        case .rightMirrored: (sx, sy) = (w - 1 - y, h - 1 - x)
                        case .left: (sx, sy) = (w - 1 - y, x)
                        }
                        let from = (sy * w + sx) * c, to = (y * outWidth + x) * c
                        for k in 0..<c { target[to + k] = source[from + k] }
                    }
                }
            }
        }
        return RasterImage(width: outWidth, height: outHeight, layout: image.layout, samples: out)
    }
}
