// Harmonizing one image of any size with a trained GKNet: the one path that the command line
// (single and batch), the web service, the evaluator and the benchmarks run. The network runs at
// its training resolution (256x256 by default) and the colour change it makes is carried to the
// composite's own resolution by `carryToFullResolution` (never by upsampling the output pixels);
// pixels where the mask is 0 are returned exactly as in the composite. A model file may carry a
// fitted shrink of the predicted change toward the identity (`changeScale`, fitted by `gknet
// calibrate`) and a per-image change gate (`ChangeGate`, fitted by `gknet calibrate --gate`); both
// are applied to the network's output, so every path below sees them. What may change per call
// (method, affine settings, change scale, gate on or off) is a value, `Harmonizer.Options`.
import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetTensorCore

/// A loaded model ready to harmonize images (inference mode, no gradient recording).
///
/// Load one with ``ModelLoading`` (`Harmonizer.bundled()`, `Harmonizer(contentsOf:)`), then call
/// ``harmonize(composite:mask:options:afterStage:)``. The harmonizer itself is never changed by a
/// call: per-call choices are an ``Options`` value. One harmonizer runs one call at a time (its
/// network keeps buffers); give each thread its own.
public final class Harmonizer: @unchecked Sendable {
    /// What a caller may choose per call. Fields left nil take the harmonizer's defaults (the
    /// model head's method, the model file's change scale).
    public struct Options: Sendable, Equatable {
        /// How the low-resolution result reaches full resolution; nil = the model head's default
        /// (``Harmonizer/defaultMethod(for:)``). `upsampledTransform` on a model without the affine
        /// head falls back to `localAffine`.
        public var method: FullResolutionMethod?
        /// Settings of the `localAffine` method.
        public var affineSettings: LocalAffineSettings
        /// The share of the predicted change kept, in 0...1; nil = the model file's.
        public var changeScale: Float?
        /// Whether the model file's per-image change gate applies (nil = yes when it has one; false =
        /// the network's change as it is).
        public var useChangeGate: Bool?

        public init(
            method: FullResolutionMethod? = nil, affineSettings: LocalAffineSettings = LocalAffineSettings(),
            changeScale: Float? = nil, useChangeGate: Bool? = nil
        ) {
            self.method = method
            self.affineSettings = affineSettings
            self.changeScale = changeScale
            self.useChangeGate = useChangeGate
        }
    }

    /// The stages of one harmonization, reported to `afterStage` as they end.
    public enum Stage: String, Sendable {
        /// The network ran at its input size.
        case network
        /// The result was carried to the composite's resolution.
        case fullResolution = "full resolution"
    }

    public let model: GKNet
    /// Side of the square the network sees.
    public let networkSize: Int
    /// The options of a call that passes none (set when the harmonizer is made).
    public let options: Options
    /// The change scale stored with the model (1 = the network's output as it is; 0 = the
    /// composite): result = composite + changeScale * (prediction - composite).
    public let changeScale: Float
    /// The per-image change gate stored with the model (nil = none): scales each image's change by a
    /// factor in 0...1 computed from the image and the prediction (``ChangeGate``).
    public let changeGate: ChangeGate?
    /// The share of the network's change the last call kept for its (last) image: the change scale
    /// times the gate's factor; 0 = the composite returned as it is. nil before the first call.
    /// (One call at a time per harmonizer, so this is the caller's own call's value.)
    public private(set) var lastChangeKept: Float?
    /// Whether the model file stores a change gate or a change scale other than 1 (what
    /// `lastChangeKept` is worth reporting for).
    public var storesChangeAdjustment: Bool { changeGate != nil || changeScale != 1 }

    /// The default full-resolution method (``options`` resolved against the model's head).
    public var method: FullResolutionMethod { resolvedMethod(options) }
    /// The default local affine settings.
    public var affineSettings: LocalAffineSettings { options.affineSettings }

    /// Metadata key of the fitted change scale in a model file (a decimal number as text).
    public static let changeScaleKey = "gknet.change_scale"
    /// Metadata key of how it was fitted (one line of text).
    public static let changeScaleFitKey = "gknet.change_scale_fit"

    /// - Parameters:
    ///   - model: the network (put in evaluation mode).
    ///   - method: nil = `defaultMethod(for:)` the model's head.
    ///   - changeScale: the shrink of the predicted change stored with the model (1 = none; a model
    ///     file's is `ModelLoading.changeScale(in:)`).
    ///   - changeGate: the per-image gate stored with the model (nil = none; a model file's is
    ///     `ChangeGate.stored(in:)`).
    ///   - options: the defaults of every call (its `method`, when given, wins over `method`).
    public init(
        model: GKNet, method: FullResolutionMethod? = nil, changeScale: Float = 1, changeGate: ChangeGate? = nil,
        options: Options = Options()
    ) {
        self.model = model
        model.eval()
        networkSize = model.configuration.inputSize
        var defaults = options
        if defaults.method == nil { defaults.method = method }
        self.options = defaults
        self.changeScale = changeScale
        self.changeGate = changeGate
    }

    /// The full-resolution method a model's head works best with (docs/results.md, "Full
    /// resolution"): the predicted transforms themselves for the affine head, the fitted local
    /// affine transforms otherwise.
    public static func defaultMethod(for output: OutputHead) -> FullResolutionMethod {
        output == .affine ? .upsampledTransform : .localAffine
    }

    /// The method a call with `options` uses.
    public func resolvedMethod(_ options: Options) -> FullResolutionMethod {
        options.method ?? self.options.method ?? Self.defaultMethod(for: model.configuration.output)
    }

    /// The change scale a call with `options` uses.
    public func resolvedChangeScale(_ options: Options) -> Float {
        options.changeScale ?? self.options.changeScale ?? changeScale
    }

    /// The change gate a call with `options` uses (nil = none).
    public func resolvedChangeGate(_ options: Options) -> ChangeGate? {
        (options.useChangeGate ?? self.options.useChangeGate ?? true) ? changeGate : nil
    }

    // MARK: - The one path

    /// Harmonizes a composite of any size: the network at its input size, then its colour change
    /// carried to the composite's resolution.
    /// - Parameters:
    ///   - composite: 3 x H x W in 0...1.
    ///   - mask: 1 x H x W in 0...1 (1 = the region to harmonize; soft values are blending weights).
    ///   - options: nil = ``options``.
    ///   - afterStage: called after each stage (timing; a caller that wants to stop throws).
    /// - Returns: the result at H x W; pixels where the mask is 0 equal the composite exactly.
    /// - Throws: ``HarmonizeError`` when the images do not fit together (sizes, channels, an
    ///   empty image), or what `afterStage` throws.
    public func harmonize(
        composite: PlanarImage, mask: PlanarImage, options: Options? = nil,
        afterStage: (Stage) throws -> Void = { _ in }
    ) throws -> PlanarImage {
        guard composite.channels == 3, mask.channels == 1 else {
            throw HarmonizeError(
                "the composite needs 3 channels and the mask 1 (got \(composite.channels) and \(mask.channels))")
        }
        guard composite.width == mask.width && composite.height == mask.height else {
            throw HarmonizeError(
                "composite \(composite.width)x\(composite.height) and mask \(mask.width)x\(mask.height) differ in size")
        }
        guard composite.width > 0 && composite.height > 0 else { throw HarmonizeError("the composite is empty") }
        let options = options ?? self.options
        let (smallComposite, smallMask) = networkInputs(composite: composite, mask: mask)
        let prediction = predictWithTransforms(
            composites: [smallComposite], masks: [smallMask], changeScale: resolvedChangeScale(options),
            changeGate: resolvedChangeGate(options))[0]
        try afterStage(.network)
        var result: PlanarImage
        if composite.width == networkSize && composite.height == networkSize {
            result = prediction.image
            Self.keepBackground(&result, composite: composite, mask: mask)
        } else {
            // every method blends m * changed + (1 - m) * composite: exact where m == 0
            result = carry(
                prediction, composite: smallComposite, mask: smallMask, fullComposite: composite, fullMask: mask,
                options: options)
        }
        try afterStage(.fullResolution)
        return result
    }

    /// result = composite wherever mask == 0 (whatever blend the model was trained with).
    static func keepBackground(_ result: inout PlanarImage, composite: PlanarImage, mask: PlanarImage) {
        let plane = mask.planeSize
        composite.values.withUnsafeBufferPointer { source in
            mask.values.withUnsafeBufferPointer { alpha in
                result.values.withUnsafeMutableBufferPointer { out in
                    parallelChunks(plane, minimumPerThread: 1 << 16) { range in
                        for c in 0..<3 {
                            for i in range where alpha[i] == 0 { out[c * plane + i] = source[c * plane + i] }
                        }
                    }
                }
            }
        }
    }

    // MARK: - The pieces (for sweeps and training-time validation)

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
    /// - Returns: the harmonized images in 0...1 (clamped), same size, shrunk by `changeScale`
    ///   (nil = the model's) and the change gate (`.some(nil)` = none; nil = the model's). The
    ///   background is not restored (see `harmonize`).
    public func predict(
        composites: [PlanarImage], masks: [PlanarImage], changeScale: Float? = nil, changeGate: ChangeGate?? = nil
    ) -> [PlanarImage] {
        predictWithTransforms(composites: composites, masks: masks, changeScale: changeScale, changeGate: changeGate)
            .map(\.image)
    }

    /// `predict`, with the colour transform of each image when the model has the affine head.
    /// Both are shrunk toward the identity by `changeScale` (nil = the model's) times the change
    /// gate's factor for the image (`.some(nil)` = no gate; nil = the model's).
    /// - Returns: per image the harmonized image (3 x h x w, clamped) and the transform (12 x h x w) or nil.
    public func predictWithTransforms(
        composites: [PlanarImage], masks: [PlanarImage], changeScale: Float? = nil, changeGate: ChangeGate?? = nil
    ) -> [(image: PlanarImage, transform: PlanarImage?)] {
        let baseScale = changeScale ?? resolvedChangeScale(options)
        let gate = changeGate ?? resolvedChangeGate(options)
        let (output, transform) = withoutGradient {
            model.forward(composite: PlanarImage.batchTensor(composites), mask: PlanarImage.batchTensor(masks))
        }
        return (0..<composites.count).map { index in
            let image = PlanarImage(tensor: output, index: index).clamped()
            let colorTransform = transform.map { PlanarImage(tensor: $0, index: index) }
            var scale = baseScale
            if let gate {
                scale *= gate.factor(
                    ChangeGate.features(composite: composites[index], mask: masks[index], prediction: image))
            }
            lastChangeKept = scale
            guard scale != 1 else { return (image, colorTransform) }
            return (
                Self.shrunk(image, toward: composites[index], scale: scale),
                colorTransform.map { Self.shrunk(transform: $0, scale: scale) }
            )
        }
    }

    /// composite + scale * (prediction - composite), per value (same shapes); the prediction itself,
    /// bit for bit, at scale 1. For a prediction in 0...1 and scale in 0...1 the result stays in 0...1.
    public static func shrunk(_ prediction: PlanarImage, toward composite: PlanarImage, scale: Float) -> PlanarImage {
        precondition(
            prediction.values.count == composite.values.count,
            "Harmonizer.shrunk: prediction \(prediction.width)x\(prediction.height)x\(prediction.channels), composite "
                + "\(composite.width)x\(composite.height)x\(composite.channels)")
        guard scale != 1 else { return prediction }
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

    /// The low-resolution prediction carried to the full-resolution composite with the method of
    /// `options` (nil = ``options``).
    public func carry(
        _ prediction: (image: PlanarImage, transform: PlanarImage?), composite: PlanarImage, mask: PlanarImage,
        fullComposite: PlanarImage, fullMask: PlanarImage, options: Options? = nil
    ) -> PlanarImage {
        let options = options ?? self.options
        return carryToFullResolution(
            method: resolvedMethod(options), composite: composite, prediction: prediction.image, mask: mask,
            fullComposite: fullComposite, fullMask: fullMask, settings: options.affineSettings,
            transform: prediction.transform)
    }
}
