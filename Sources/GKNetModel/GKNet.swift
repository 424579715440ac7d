// GKNet, the Global-aware Kernel Network (Shen et al., ICCV 2023), read like the paper's figure:
// composite, mask -> encoder features -> LRE tokens -> KPB per level (SCF inside) -> kernels ->
// decoder with kernel modulation -> prediction -> mask blend. Port of Scripts/reference/gknet.py.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore

public final class GKNet: Module {
    public let configuration: GKNetConfiguration
    let encoder: FeatureEncoder
    let lre: LongDistanceReferenceExtractor
    /// The kernel-predicting levels, deepest first (configuration.kernelLevelList).
    let kernelLevels: [KernelLevel]
    let decoder: ModulatedDecoder
    let head: Conv2d
    let blend: Conv2d?
    public var isTraining = true

    /// Builds a freshly initialised network (the twin's `init_weights`: convolutions Xavier normal
    /// with gain sqrt(2) and zero bias, linears / attention / positional embedding truncated normal
    /// 0.02, norms 1 / 0, kernel heads' last convolution zero).
    public init(configuration: GKNetConfiguration, seed: UInt64 = 0) throws {
        try configuration.validate()
        self.configuration = configuration
        var generator = SplitMix64(seed: seed)
        let c = configuration.encoderWidths
        encoder = FeatureEncoder(configuration: configuration, generator: &generator)
        lre = LongDistanceReferenceExtractor(configuration: configuration, generator: &generator)
        var levels: [KernelLevel] = []
        for level in configuration.kernelLevelList {
            // KPB^3 reads the token map G_map (D channels), every other KPB the previous one's P^{l+1}.
            let previousChannels = level == 3 ? configuration.lreWidth : c[level]
            let block = KernelPredictionBlock(
                configuration: configuration, previousChannels: previousChannels, channels: c[level - 1],
                generator: &generator)
            levels.append(KernelLevel(level: level, block: block))
        }
        kernelLevels = levels
        decoder = ModulatedDecoder(configuration: configuration, generator: &generator)
        head = Conv2d(
            inputChannels: configuration.decoderOutputWidth, outputChannels: configuration.output.channels,
            kernelSize: 1, bias: true, generator: &generator)
        blend =
            configuration.outputBlend == .learned
            ? Conv2d(
                inputChannels: configuration.decoderOutputWidth, outputChannels: 1, kernelSize: 1, bias: true,
                generator: &generator)
            : nil
        initializeWeights(generator: &generator)
    }

    public var members: [ModuleMember] {
        var result: [ModuleMember] = [.child("encoder", encoder), .child("lre", lre)]
        for kernelLevel in kernelLevels { result.append(.child("kpb.\(kernelLevel.level)", kernelLevel.block)) }
        result += [.child("decoder", decoder), .child("head", head)]
        if let blend { result.append(.child("blend", blend)) }
        return result
    }

    /// Harmonizes a batch.
    /// - Parameters:
    ///   - composite: N x 3 x H x W RGB in 0...1 (H, W multiples of 16).
    ///   - mask: N x 1 x H x W in 0...1 (soft allowed).
    ///   - trace: receives the named intermediates of docs/model.md (E1..E4, G, G_map, P3, K3, ...,
    ///     D4..D0, prediction).
    /// - Returns: N x 3 x H x W in 0...1 (not clamped).
    public func callAsFunction(composite: Tensor, mask: Tensor, trace: ((String, Tensor) -> Void)? = nil) -> Tensor {
        forward(composite: composite, mask: mask, trace: trace).output
    }

    /// The output and, for the `affine` head, the per-pixel colour transform it applied.
    /// - Returns: output N x 3 x H x W in 0...1 (not clamped); transform N x 12 x H x W (channels
    ///   3j...3j+2 = column j of A - I, channels 9...11 = b; see `applyColorTransform`) or nil.
    public func forward(composite: Tensor, mask: Tensor, trace: ((String, Tensor) -> Void)? = nil) -> (
        output: Tensor, transform: Tensor?
    ) {
        precondition(
            composite.rank == 4 && composite.shape[1] == 3,
            "GKNet: composite must be N x 3 x H x W, is \(composite.shape)")
        precondition(
            mask.shape == [composite.shape[0], 1, composite.shape[2], composite.shape[3]],
            "GKNet: mask \(mask.shape) does not match composite \(composite.shape)")
        precondition(
            composite.shape[2] % 16 == 0 && composite.shape[3] % 16 == 0,
            "GKNet: height and width must be multiples of 16, composite is \(composite.shape)")
        let input = Tensor.concatenated([normalize(composite), mask], axis: 1)  // N x 4 x H x W
        let features = encoder(input)  // F_E^1 ... F_E^4
        let (tokens, tokenMap) = lre(features[3])  // G, G_map
        let tokenBias =
            configuration.scfBackgroundBias
            ? backgroundTokenBias(mask: mask, tokenHeight: tokenMap.shape[2], tokenWidth: tokenMap.shape[3]) : nil
        var modulation: [LevelModulation] = []
        var previous = tokenMap
        for kernelLevel in kernelLevels {
            let level = kernelLevel.level
            let (fused, kernels) = kernelLevel.block(
                previous: previous, skip: features[level - 1], tokens: tokens, tokenMap: tokenMap, tokenBias: tokenBias)
            modulation.append(LevelModulation(level: level, by: kernels.map { .kernels($0) } ?? .feature(fused)))
            previous = fused
            trace?("P\(level)", fused)
            if let kernels { trace?("K\(level)", kernels) }
        }
        if let trace {
            for (index, feature) in features.enumerated() { trace("E\(index + 1)", feature) }
            trace("G", tokens)
            trace("G_map", tokenMap)
        }
        let x0 = decoder(features: features, tokenMap: tokenMap, modulation: modulation, trace: trace)
        let headOutput = head(x0)  // N x 3 (12) x H x W
        let prediction: Tensor  // N x 3 x H x W in 0...1 space
        var transform: Tensor?
        switch configuration.output {
        case .image: prediction = denormalize(headOutput)
        case .residual: prediction = composite + headOutput
        case .affine:
            prediction = Self.applyColorTransform(headOutput, to: composite)
            transform = headOutput
        }
        trace?("prediction", prediction)
        switch configuration.outputBlend {
        case .mask:
            return (mask * prediction + (1 - mask) * composite, transform)
        case .learned:
            let alpha = (blend!(x0) * 3).sigmoid()
            return (alpha * composite + (1 - alpha) * prediction, transform)
        }
    }

    /// A per-pixel affine colour transform: out = (I + A') c + b, composed of slices, products and sums.
    /// - Parameters:
    ///   - transform: N x 12 x H x W; channels 3j...3j+2 hold column j of A' (so channel 3j + c is
    ///     A'[c][j]), channels 9...11 hold b.
    ///   - rgb: N x 3 x H x W.
    /// - Returns: N x 3 x H x W.
    public static func applyColorTransform(_ transform: Tensor, to rgb: Tensor) -> Tensor {
        precondition(
            transform.rank == 4 && transform.shape[1] == 12
                && rgb.shape == [transform.shape[0], 3, transform.shape[2], transform.shape[3]],
            "applyColorTransform: transform \(transform.shape) and image \(rgb.shape) do not fit (need N x 12 x H x W "
                + "and N x 3 x H x W)"
        )
        var out = rgb + transform.sliced(axis: 1, range: 9..<12)
        for j in 0..<3 {
            out = out + transform.sliced(axis: 1, range: 3 * j..<3 * j + 3) * rgb.sliced(axis: 1, range: j..<j + 1)
        }
        return out
    }

    private var meanTensor: Tensor { Tensor(shape: [1, 3, 1, 1], data: configuration.imageMean) }
    private var stdTensor: Tensor { Tensor(shape: [1, 3, 1, 1], data: configuration.imageStd) }

    /// (rgb - mean) / std per channel.
    func normalize(_ rgb: Tensor) -> Tensor { (rgb - meanTensor) / stdTensor }
    /// rgb * std + mean per channel.
    func denormalize(_ rgb: Tensor) -> Tensor { rgb * stdTensor + meanTensor }

    /// The twin's initialisation (docs/model.md, "Choices" item 14).
    private func initializeWeights(generator: inout SplitMix64) {
        for (_, module) in namedModules() {
            if let conv = module as? Conv2d {
                conv.weight.data =
                    Initializers.xavierNormal(conv.weight.shape, gain: Float(2).squareRoot(), generator: &generator)
                    .data
                conv.bias?.data = [Float](repeating: 0, count: conv.bias!.count)
            } else if let conv = module as? ConvTranspose2d {
                conv.weight.data =
                    Initializers.xavierNormal(conv.weight.shape, gain: Float(2).squareRoot(), generator: &generator)
                    .data
                conv.bias?.data = [Float](repeating: 0, count: conv.bias!.count)
            } else if let linear = module as? Linear {
                linear.weight.data =
                    Initializers.truncatedNormal(
                        linear.weight.shape, std: 0.02, low: -0.04, high: 0.04, generator: &generator
                    ).data
                linear.bias?.data = [Float](repeating: 0, count: linear.bias!.count)
            }
        }
        if configuration.output != .image {
            // identity heads: the untrained network returns the composite
            head.weight.data = [Float](repeating: 0, count: head.weight.count)
            head.bias?.data = [Float](repeating: 0, count: head.bias!.count)
        }
        for kernelLevel in kernelLevels {
            guard let head = kernelLevel.block.kernelHead else { continue }
            head.conv2.weight.data = [Float](repeating: 0, count: head.conv2.weight.count)
            head.conv2.bias?.data = [Float](repeating: 0, count: head.conv2.bias!.count)
        }
    }
}

/// One kernel-predicting level: l = 3, 2 or 1 (1/8, 1/4, 1/2 of the input) and its KPB.
struct KernelLevel {
    let level: Int
    let block: KernelPredictionBlock
}
