// Typed samples and batches (no string-keyed dictionaries).
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// One composite with its mask and real (target) image, as float images.
public struct Sample: Sendable {
    public let reference: SampleReference
    /// 3 x H x W RGB in 0...1.
    public var composite: PlanarImage
    /// 1 x H x W in 0...1 (1 = foreground), soft values kept.
    public var mask: PlanarImage
    /// 3 x H x W RGB in 0...1: the real image the network should restore.
    public var target: PlanarImage

    public init(reference: SampleReference, composite: PlanarImage, mask: PlanarImage, target: PlanarImage) {
        self.reference = reference
        self.composite = composite
        self.mask = mask
        self.target = target
    }

    public var width: Int { composite.width }
    public var height: Int { composite.height }

    /// Decodes the three files; their sizes must agree.
    public static func load(_ reference: SampleReference, limits: DecodeLimits = DecodeLimits()) throws -> Sample {
        let composite = try ImageFile.readRGB(reference.composite, limits: limits)
        let mask = try ImageFile.readMask(reference.mask, source: .first, limits: limits)
        let target = try ImageFile.readRGB(reference.real, limits: limits)
        for (image, url) in [(mask, reference.mask), (target, reference.real)]
        where image.width != composite.width || image.height != composite.height {
            throw DatasetError(
                "\(reference.origin): \(url.path) is \(image.width)x\(image.height) but composite "
                    + "\(reference.composite.path) is \(composite.width)x\(composite.height)")
        }
        return Sample(reference: reference, composite: composite, mask: mask, target: target)
    }

    /// The three images transformed alike.
    /// A sample whose composite and target are one image (the same storage: a real photo before
    /// a composite is made of it) maps it once.
    public func mapImages(_ body: (PlanarImage) -> PlanarImage) -> Sample {
        let mappedComposite = body(composite)
        return Sample(
            reference: reference, composite: mappedComposite, mask: body(mask),
            target: compositeIsTarget ? mappedComposite : body(target))
    }

    /// Whether the composite and the target share their storage (and so are equal).
    var compositeIsTarget: Bool {
        guard composite.width == target.width, composite.height == target.height,
            composite.channels == target.channels
        else { return false }
        let compositeStart = composite.values.withUnsafeBufferPointer { $0.baseAddress }
        let targetStart = target.values.withUnsafeBufferPointer { $0.baseAddress }
        return compositeStart != nil && compositeStart == targetStart
    }
}

/// N samples of equal size, stacked as tensors.
public struct Batch: Sendable {
    /// N x 3 x H x W composites in 0...1.
    public let composites: Tensor
    /// N x 1 x H x W masks in 0...1.
    public let masks: Tensor
    /// N x 3 x H x W real images in 0...1.
    public let targets: Tensor
    /// Where each item came from.
    public let references: [SampleReference]

    public var count: Int { references.count }

    /// Stacks samples that share one size.
    public init(samples: [Sample]) {
        precondition(!samples.isEmpty, "Batch: no samples")
        composites = PlanarImage.batchTensor(samples.map(\.composite))
        masks = PlanarImage.batchTensor(samples.map(\.mask))
        targets = PlanarImage.batchTensor(samples.map(\.target))
        references = samples.map(\.reference)
    }

    /// The network input: composite and mask concatenated along channels, N x 4 x H x W.
    public var inputs: Tensor {
        let n = composites.shape[0], h = composites.shape[2], w = composites.shape[3]
        let plane = h * w
        var data = [Float](repeating: 0, count: n * 4 * plane)
        for i in 0..<n {
            data.replaceSubrange(
                i * 4 * plane..<(i * 4 + 3) * plane, with: composites.data[i * 3 * plane..<(i + 1) * 3 * plane])
            data.replaceSubrange(
                (i * 4 + 3) * plane..<(i + 1) * 4 * plane, with: masks.data[i * plane..<(i + 1) * plane])
        }
        return Tensor(shape: [n, 4, h, w], data: data)
    }
}
