// Integer images exactly as files store them: interleaved samples, 8 or 16 bits.

/// The channels of an interleaved pixel.
public enum PixelLayout: Int, Sendable, Codable, CaseIterable {
    case gray = 1, grayAlpha = 2, rgb = 3, rgba = 4

    /// Samples per pixel.
    public var channels: Int { rawValue }
    /// Whether the last channel is alpha.
    public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
    /// Whether the pixel has three colour channels.
    public var isColor: Bool { self == .rgb || self == .rgba }

    /// The layout with `channels` samples per pixel, if any.
    public init?(channels: Int) { self.init(rawValue: channels) }
}

/// An image of integer samples, H x W x C interleaved, row-major (what PNG and JPEG store).
///
/// `Sample` is `UInt8` (8-bit) or `UInt16` (16-bit, full range 0...65535).
public struct RasterImage<Sample: FixedWidthInteger & UnsignedInteger & Sendable>: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let layout: PixelLayout
    /// `height * width * layout.channels` samples; pixel (x, y) channel c is at
    /// `(y * width + x) * channels + c`.
    public var samples: [Sample]

    /// An image over existing samples.
    /// - Precondition: `samples.count == width * height * layout.channels`.
    public init(width: Int, height: Int, layout: PixelLayout, samples: [Sample]) {
        precondition(width >= 0 && height >= 0, "RasterImage: negative size \(width)x\(height)")
        precondition(
            samples.count == width * height * layout.channels,
            "RasterImage: \(samples.count) samples do not fill \(width)x\(height) \(layout)")
        self.width = width
        self.height = height
        self.layout = layout
        self.samples = samples
    }

    /// An image of zeros.
    public init(width: Int, height: Int, layout: PixelLayout) {
        self.init(
            width: width, height: height, layout: layout,
            samples: [Sample](repeating: 0, count: width * height * layout.channels))
    }

    /// Bits per sample (8 or 16).
    public static var bitDepth: Int { Sample.bitWidth }
    /// The largest sample value (255 or 65535), which maps to 1.0.
    public static var maximum: Float { Float(Sample.max) }

    /// The sample of pixel (x, y), channel c.
    public subscript(x: Int, y: Int, channel: Int) -> Sample {
        get { samples[(y * width + x) * layout.channels + channel] }
        set { samples[(y * width + x) * layout.channels + channel] = newValue }
    }
}

public typealias RasterImage8 = RasterImage<UInt8>
public typealias RasterImage16 = RasterImage<UInt16>

/// A decoded file: 8-bit or 16-bit samples, as stored (palettes and low bit depths expanded to 8
/// bits, PNG `tRNS` transparency expanded to an alpha channel).
public enum DecodedImage: Sendable, Equatable {
    case eightBit(RasterImage8)
    case sixteenBit(RasterImage16)

    public var width: Int {
        switch self {
        case .eightBit(let i): i.width
        case .sixteenBit(let i): i.width
        }
    }
    public var height: Int {
        switch self {
        case .eightBit(let i): i.height
        case .sixteenBit(let i): i.height
        }
    }
    public var layout: PixelLayout {
        switch self {
        case .eightBit(let i): i.layout
        case .sixteenBit(let i): i.layout
        }
    }
    /// 8 or 16.
    public var bitDepth: Int {
        switch self {
        case .eightBit: 8
        case .sixteenBit: 16
        }
    }
}
