// Harmonizing one image of any size with a trained GKNet: the network runs at its training
// resolution (256x256 by default) and the colour change it makes is carried to the composite's
// own resolution by `carryToFullResolution` (never by upsampling the output pixels). A model file
// may carry a fitted shrink of the predicted change toward the identity (`changeScale`, fitted by
// `gknet calibrate`); it is applied to the network's output, so every path below sees it.
import Foundation
import GKNetModel
import ImageCodec
import TensorCore

/// A loaded model ready to harmonize images (inference mode, no gradient recording).
public final class Harmonizer: @unchecked Sendable {
    public let model: GKNet
    /// Side of the square the network sees.
    public let networkSize: Int
    /// How the low-resolution result reaches full resolution.
    public var method: FullResolutionMethod
    public var affineSettings = LocalAffineSettings()
    /// The share of the predicted change kept: result = composite + changeScale * (prediction -
    /// composite) (1 = the network's output as it is; 0 = the composite).
    public var changeScale: Float

    /// Metadata key of the fitted change scale in a model file (a decimal number as text).
    public static let changeScaleKey = "gknet.change_scale"
    /// Metadata key of how it was fitted (one line of text).
    public static let changeScaleFitKey = "gknet.change_scale_fit"

    /// - Parameters:
    ///   - method: nil = `defaultMethod(for:)` the model's head.
    ///   - changeScale: the shrink of the predicted change (1 = none; a model file's is
    ///     `ModelLoading.changeScale(in:)`).
    public init(model: GKNet, method: FullResolutionMethod? = nil, changeScale: Float = 1) {
        self.model = model
        model.eval()
        networkSize = model.configuration.inputSize
        self.method = method ?? Self.defaultMethod(for: model.configuration.output)
        self.changeScale = changeScale
    }

    /// The full-resolution method a model's head works best with (docs/results.md, "Full
    /// resolution"): the predicted transforms themselves for the affine head, the fitted local
    /// affine transforms otherwise.
    public static func defaultMethod(for output: OutputHead) -> FullResolutionMethod {
        output == .affine ? .upsampledTransform : .localAffine
    }

    /// The network's input at `networkSize`: composite and mask resized (area filter when shrinking).
    public func networkInputs(composite: PlanarImage, mask: PlanarImage) -> (composite: PlanarImage, mask: PlanarImage)
    {
        if composite.width == networkSize && composite.height == networkSize { return (composite, mask) }
        return (
            composite.resized(width: networkSize, height: networkSize, filter: .automatic),
            mask.resized(width: networkSize, height: networkSize, filter: .automatic)
        )
    }

    /// Runs the network on images already at `networkSize` (a batch of one or more).
    /// - Returns: the harmonized images in 0...1 (clamped), same size.
    public func predict(composites: [PlanarImage], masks: [PlanarImage]) -> [PlanarImage] {
        predictWithTransforms(composites: composites, masks: masks).map(\.image)
    }

    /// `predict`, with the colour transform of each image when the model has the affine head.
    /// Both are shrunk toward the identity by `changeScale`.
    /// - Returns: per image the harmonized image (3 x h x w, clamped) and the transform (12 x h x w) or nil.
    public func predictWithTransforms(composites: [PlanarImage], masks: [PlanarImage]) -> [(
        image: PlanarImage, transform: PlanarImage?
    )] {
        let (output, transform) = withoutGradient {
            model.forward(composite: PlanarImage.batchTensor(composites), mask: PlanarImage.batchTensor(masks))
        }
        return (0..<composites.count).map { index in
            let image = PlanarImage(tensor: output, index: index).clamped()
            let colorTransform = transform.map { PlanarImage(tensor: $0, index: index) }
            guard changeScale != 1 else { return (image, colorTransform) }
            return (
                Self.shrunk(image, toward: composites[index], scale: changeScale),
                colorTransform.map { Self.shrunk(transform: $0, scale: changeScale) }
            )
        }
    }

    /// composite + scale * (prediction - composite), per value (same shapes). For a prediction in
    /// 0...1 and scale in 0...1 the result stays in 0...1.
    public static func shrunk(_ prediction: PlanarImage, toward composite: PlanarImage, scale: Float) -> PlanarImage {
        precondition(
            prediction.values.count == composite.values.count,
            "Harmonizer.shrunk: prediction \(prediction.width)x\(prediction.height)x\(prediction.channels), composite "
                + "\(composite.width)x\(composite.height)x\(composite.channels)")
        var result = prediction
        for i in result.values.indices {
            result.values[i] = composite.values[i] + scale * (prediction.values[i] - composite.values[i])
        }
        return result
    }

    /// The affine head's transform (I + A') c + b shrunk the same way: composite + scale * (T(c) - c)
    /// = (I + scale A') c + scale b, so every one of its 12 channels (A' and b) is multiplied by scale.
    static func shrunk(transform: PlanarImage, scale: Float) -> PlanarImage {
        var result = transform
        for i in result.values.indices { result.values[i] *= scale }
        return result
    }

    /// The low-resolution prediction carried to the full-resolution composite with `method`.
    public func carry(
        _ prediction: (image: PlanarImage, transform: PlanarImage?), composite: PlanarImage, mask: PlanarImage,
        fullComposite: PlanarImage, fullMask: PlanarImage
    ) -> PlanarImage {
        carryToFullResolution(
            method: method, composite: composite, prediction: prediction.image, mask: mask,
            fullComposite: fullComposite, fullMask: fullMask, settings: affineSettings, transform: prediction.transform)
    }

    /// Harmonizes a composite of any size.
    /// - Parameters: composite 3 x H x W and mask 1 x H x W in 0...1 (same size).
    /// - Returns: the result at H x W; pixels where the mask is 0 equal the composite exactly.
    public func harmonize(composite: PlanarImage, mask: PlanarImage) -> PlanarImage {
        precondition(
            composite.width == mask.width && composite.height == mask.height,
            "Harmonizer: composite \(composite.width)x\(composite.height) and mask \(mask.width)x\(mask.height) differ")
        let (smallComposite, smallMask) = networkInputs(composite: composite, mask: mask)
        let prediction = predictWithTransforms(composites: [smallComposite], masks: [smallMask])[0]
        if composite.width == networkSize && composite.height == networkSize { return prediction.image }
        return carry(prediction, composite: smallComposite, mask: smallMask, fullComposite: composite, fullMask: mask)
    }
}
