// Float images for processing: C planes of H x W, values nominally in 0...1, the memory layout
// of one NCHW tensor item. Conversions from and to integer rasters and tensors live here.
import GKNetTensorCore

/// A float image stored as channel planes (C x H x W, row-major), nominal range 0...1.
///
/// Image-domain operations (resize, colour changes, crops) work on this type; they are not
/// autograd ops. `tensor()` gives the 1 x C x H x W tensor the model eats.
public struct PlanarImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// `channels * height * width` values; channel c, row y, column x is at `(c * height + y) * width + x`.
    public var values: [Float]

    /// An image over existing values.
    /// - Precondition: `values.count == channels * height * width`.
    public init(width: Int, height: Int, channels: Int, values: [Float]) {
        precondition(width >= 0 && height >= 0 && channels > 0, "PlanarImage: bad size \(channels)x\(height)x\(width)")
        precondition(
            values.count == channels * height * width,
            "PlanarImage: \(values.count) values do not fill \(channels)x\(height)x\(width)")
        self.width = width
        self.height = height
        self.channels = channels
        self.values = values
    }

    /// An image with every value `value`.
    public init(width: Int, height: Int, channels: Int, repeating value: Float = 0) {
        self.init(
            width: width, height: height, channels: channels,
            values: [Float](repeating: value, count: channels * height * width))
    }

    /// Pixels per plane.
    public var planeSize: Int { width * height }

    /// The value at channel c, row y, column x.
    public subscript(channel: Int, y: Int, x: Int) -> Float {
        get { values[(channel * height + y) * width + x] }
        set { values[(channel * height + y) * width + x] = newValue }
    }

    /// One channel as a 1-channel image.
    public func plane(_ channel: Int) -> PlanarImage {
        precondition(channel >= 0 && channel < channels, "plane: channel \(channel) of a \(channels)-channel image")
        let start = channel * planeSize
        return PlanarImage(width: width, height: height, channels: 1, values: Array(values[start..<start + planeSize]))
    }

    /// Every value clamped to 0...1.
    public func clamped() -> PlanarImage {
        var copy = self
        for i in copy.values.indices { copy.values[i] = min(max(copy.values[i], 0), 1) }
        return copy
    }
}

// MARK: - Tensors

extension PlanarImage {
    /// The image as a 1 x C x H x W tensor (values copied, no gradient).
    public func tensor() -> Tensor {
        Tensor(shape: [1, channels, height, width], data: values)
    }

    /// Item `index` of an N x C x H x W tensor (or a C x H x W tensor) as an image.
    public init(tensor: Tensor, index: Int = 0) {
        switch tensor.rank {
        case 3:
            precondition(index == 0, "PlanarImage(tensor:): index \(index) of a rank-3 tensor \(tensor.shape)")
            self.init(width: tensor.shape[2], height: tensor.shape[1], channels: tensor.shape[0], values: tensor.data)
        case 4:
            precondition(
                index >= 0 && index < tensor.shape[0], "PlanarImage(tensor:): index \(index) of tensor \(tensor.shape)")
            let count = tensor.shape[1] * tensor.shape[2] * tensor.shape[3]
            self.init(
                width: tensor.shape[3], height: tensor.shape[2], channels: tensor.shape[1],
                values: Array(tensor.data[index * count..<(index + 1) * count]))
        default:
            preconditionFailure("PlanarImage(tensor:): expected C x H x W or N x C x H x W, got \(tensor.shape)")
        }
    }

    /// Stacks same-sized images into an N x C x H x W tensor.
    public static func batchTensor(_ images: [PlanarImage]) -> Tensor {
        precondition(!images.isEmpty, "batchTensor: no images")
        let first = images[0]
        var data = [Float]()
        data.reserveCapacity(images.count * first.values.count)
        for image in images {
            precondition(
                image.width == first.width && image.height == first.height && image.channels == first.channels,
                "batchTensor: image \(image.channels)x\(image.height)x\(image.width) differs from "
                    + "\(first.channels)x\(first.height)x\(first.width)"
            )
            data.append(contentsOf: image.values)
        }
        return Tensor(shape: [images.count, first.channels, first.height, first.width], data: data)
    }
}

// MARK: - From integer rasters

/// Which value of a pixel becomes a mask value.
public enum MaskSource: String, Sendable, Codable {
    /// The first channel (gray, or red) -- what the iDIH reference reads (`mask[:, :, 0] / 255`).
    case first
    /// ITU-R 601 luminance 0.299 R + 0.587 G + 0.114 B of colour images (gray images: the gray).
    case luminance
    /// The alpha channel (a cut-out's transparency); images without alpha give an all-ones mask.
    case alpha
    /// The rule for a user's mask file (what every harmonize path reads, `PlanarImage.userMask`):
    /// the alpha channel when any pixel is below opaque, otherwise the brightest channel of each
    /// pixel (gray as it is).
    case automatic
}

extension PlanarImage {
    /// A 3-channel RGB image in 0...1: gray is replicated to three channels; alpha is ignored
    /// (an RGBA composite is used as if it were opaque: its colour values, not a blend over a
    /// background).
    public init<Sample>(rgb raster: RasterImage<Sample>) {
        let pixels = raster.width * raster.height
        let step = raster.layout.channels
        let maximum = RasterImage<Sample>.maximum
        let colour = raster.layout.isColor
        // 8-bit samples go through a 256-entry table of v / 255 (same values, no divisions)
        let table: [Float] = Sample.bitWidth == 8 ? (0..<256).map { Float($0) / 255 } : []
        let values = [Float](unsafeUninitializedCapacity: 3 * pixels) { buffer, initialized in
            let out = buffer.baseAddress!
            raster.samples.withUnsafeBufferPointer { source in
                table.withUnsafeBufferPointer { lookup in
                    parallelChunks(pixels, minimumPerThread: 1 << 16) { range in
                        for p in range {
                            for c in 0..<3 {
                                let sample = source[p * step + (colour ? c : 0)]
                                out[c * pixels + p] =
                                    lookup.isEmpty
                                    ? Float(UInt32(truncatingIfNeeded: sample)) / maximum
                                    : lookup[Int(truncatingIfNeeded: sample)]
                            }
                        }
                    }
                }
            }
            initialized = 3 * pixels
        }
        self.init(width: raster.width, height: raster.height, channels: 3, values: values)
    }

    /// A 1-channel mask in 0...1 taken from `source` (see `MaskSource`).
    public init<Sample>(mask raster: RasterImage<Sample>, source: MaskSource = .first) {
        let pixels = raster.width * raster.height
        let step = raster.layout.channels
        let maximum = RasterImage<Sample>.maximum
        if source == .automatic {
            self = Self.userMask(raster).mask
            return
        }
        var values = [Float](repeating: 0, count: pixels)
        raster.samples.withUnsafeBufferPointer { input in
            values.withUnsafeMutableBufferPointer { out in
                switch source {
                case .luminance where raster.layout.isColor:
                    for p in 0..<pixels {
                        let r = Float(input[p * step]), g = Float(input[p * step + 1]), b = Float(input[p * step + 2])
                        out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / maximum
                    }
                case .alpha:
                    if raster.layout.hasAlpha {
                        for p in 0..<pixels { out[p] = Float(input[p * step + step - 1]) / maximum }
                    } else {
                        for p in 0..<pixels { out[p] = 1 }
                    }
                default:
                    for p in 0..<pixels { out[p] = Float(input[p * step]) / maximum }
                }
            }
        }
        self.init(width: raster.width, height: raster.height, channels: 1, values: values)
    }

    /// RGB from a decoded file (see `init(rgb:)`).
    public init(rgb decoded: DecodedImage) {
        switch decoded {
        case .eightBit(let raster): self.init(rgb: raster)
        case .sixteenBit(let raster): self.init(rgb: raster)
        }
    }

    /// A mask from a decoded file (see `init(mask:source:)`).
    public init(mask decoded: DecodedImage, source: MaskSource = .first) {
        switch decoded {
        case .eightBit(let raster): self.init(mask: raster, source: source)
        case .sixteenBit(let raster): self.init(mask: raster, source: source)
        }
    }
}

// MARK: - To integer rasters

extension PlanarImage {
    /// Quantizes to integer samples: clamp to 0...1, scale to the sample range, round half up.
    /// 1 channel gives gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    public func raster<Sample>(of type: Sample.Type = Sample.self) -> RasterImage<Sample> {
        guard let layout = PixelLayout(channels: channels) else {
            preconditionFailure("PlanarImage.raster: \(channels) channels have no pixel layout (1-4)")
        }
        let pixels = planeSize
        let maximum = RasterImage<Sample>.maximum
        var samples = [Sample](repeating: 0, count: pixels * channels)
        values.withUnsafeBufferPointer { input in
            samples.withUnsafeMutableBufferPointer { out in
                for c in 0..<channels {
                    for p in 0..<pixels {
                        let v = min(max(input[c * pixels + p], 0), 1)
                        out[p * channels + c] = Sample(v * maximum + 0.5)
                    }
                }
            }
        }
        return RasterImage(width: width, height: height, layout: layout, samples: samples)
    }

    /// 8-bit samples (see `raster(of:)`).
    public func raster8() -> RasterImage8 { raster(of: UInt8.self) }
    /// 16-bit samples (see `raster(of:)`).
    public func raster16() -> RasterImage16 { raster(of: UInt16.self) }
}
