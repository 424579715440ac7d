// Harmonizing one image of any size with a trained GKNet: the network runs at its training
// resolution (256x256 by default) and the colour change it makes is carried to the composite's
// own resolution by `carryToFullResolution` (never by upsampling the output pixels).
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

    public init(model: GKNet, method: FullResolutionMethod = .localAffine) {
        self.model = model
        model.eval()
        networkSize = model.configuration.inputSize
        self.method = method
    }

    /// The network's input at `networkSize`: composite and mask resized (area filter when shrinking).
    public func networkInputs(composite: PlanarImage, mask: PlanarImage) -> (composite: PlanarImage, mask: PlanarImage) {
        if composite.width == networkSize && composite.height == networkSize { return (composite, mask) }
        return (composite.resized(width: networkSize, height: networkSize, filter: .automatic),
                mask.resized(width: networkSize, height: networkSize, filter: .automatic))
    }

    /// Runs the network on images already at `networkSize` (a batch of one or more).
    /// - Returns: the harmonized images in 0...1 (clamped), same size.
    public func predict(composites: [PlanarImage], masks: [PlanarImage]) -> [PlanarImage] {
        let output = withoutGradient {
            model(composite: PlanarImage.batchTensor(composites), mask: PlanarImage.batchTensor(masks))
        }
        return (0..<composites.count).map { PlanarImage(tensor: output, index: $0).clamped() }
    }

    /// Harmonizes a composite of any size.
    /// - Parameters: composite 3 x H x W and mask 1 x H x W in 0...1 (same size).
    /// - Returns: the result at H x W; pixels where the mask is 0 equal the composite exactly.
    public func harmonize(composite: PlanarImage, mask: PlanarImage) -> PlanarImage {
        precondition(composite.width == mask.width && composite.height == mask.height, "Harmonizer: composite \(composite.width)x\(composite.height) and mask \(mask.width)x\(mask.height) differ")
        let (smallComposite, smallMask) = networkInputs(composite: composite, mask: mask)
        let prediction = predict(composites: [smallComposite], masks: [smallMask])[0]
        if composite.width == networkSize && composite.height == networkSize { return prediction }
        return carryToFullResolution(
            method: method, composite: smallComposite, prediction: prediction, mask: smallMask,
            fullComposite: composite, fullMask: mask, settings: affineSettings)
    }
}
