// phi_D, the decoder with harmony kernel modulation (docs/model.md, "Harmony kernel modulation"
// and rows D4..D0 of "Layer by layer"): a bottleneck that also sees the global token map, three
// levels whose features are filtered by the predicted per-pixel kernels (X^l += DynConv(X^l, K^l)),
// and a full-resolution level.
import GKNetNeuralNet
import GKNetTensorCore

/// D_l, l = 3, 2, 1: X = `up` ELU(BN(ConvT 4x4 s2(X))); X = X + F_E^l; X = `refine` ELU(BN(Conv3x3(X))).
final class DecoderLevel: Module {
    let up: ConvNormELU, refine: ConvNormELU
    var isTraining = true

    init(inputChannels: Int, outputChannels: Int, generator: inout SplitMix64) {
        up = ConvNormELU(upsampling: inputChannels, outputChannels, generator: &generator)
        refine = ConvNormELU(outputChannels, outputChannels, kernelSize: 3, generator: &generator)
    }

    var members: [ModuleMember] { [.child("up", up), .child("refine", refine)] }

    /// x: N x C_in x h x w, skip: N x C_out x 2h x 2w -> N x C_out x 2h x 2w.
    func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor { refine(up(x) + skip) }
}

/// D_0: X = `up` ELU(BN(ConvT 4x4 s2(X))); X = `refine` ELU(Conv3x3(X) + b).
final class OutputLevel: Module {
    let up: ConvNormELU, refine: ConvELU
    var isTraining = true

    init(inputChannels: Int, outputChannels: Int, generator: inout SplitMix64) {
        up = ConvNormELU(upsampling: inputChannels, outputChannels, generator: &generator)
        refine = ConvELU(outputChannels, outputChannels, kernelSize: 3, generator: &generator)
    }

    var members: [ModuleMember] { [.child("up", up), .child("refine", refine)] }

    func callAsFunction(_ x: Tensor) -> Tensor { refine(up(x)) }
}

/// What modulates decoder level `level`: the harmony kernels K^l, or (modulation off) the KPB
/// feature P^l.
struct LevelModulation {
    enum Source {
        case kernels(Tensor)
        case feature(Tensor)
    }
    let level: Int
    let by: Source
}

final class ModulatedDecoder: Module {
    let bottleneck: ConvNormELU
    /// Levels 3, 2, 1 (index 0, 1, 2).
    let levels: [DecoderLevel]
    let output: OutputLevel
    let kernelSize: Int
    var isTraining = true

    init(configuration: GKNetConfiguration, generator: inout SplitMix64) {
        let c = configuration.encoderWidths
        kernelSize = configuration.kernelSize
        bottleneck = ConvNormELU(c[3] + configuration.lreWidth, c[3], kernelSize: 1, generator: &generator)
        levels = [
            DecoderLevel(inputChannels: c[3], outputChannels: c[2], generator: &generator),
            DecoderLevel(inputChannels: c[2], outputChannels: c[1], generator: &generator),
            DecoderLevel(inputChannels: c[1], outputChannels: c[0], generator: &generator),
        ]
        output = OutputLevel(
            inputChannels: c[0], outputChannels: configuration.decoderOutputWidth, generator: &generator)
    }

    var members: [ModuleMember] {
        [
            .child("bottleneck", bottleneck), .child("levels.3", levels[0]), .child("levels.2", levels[1]),
            .child("levels.1", levels[2]), .child("levels.0", output),
        ]
    }

    /// - Parameters:
    ///   - features: [F_E^1, ..., F_E^4].
    ///   - tokenMap: G_map, N x D x H/16 x W/16.
    ///   - modulation: what modulates each level that has a KPB (levels without one are not modulated).
    /// - Returns: X^0, N x decoderOutputWidth x H x W.
    func callAsFunction(
        features: [Tensor], tokenMap: Tensor, modulation: [LevelModulation], trace: ((String, Tensor) -> Void)? = nil
    ) -> Tensor {
        var x = bottleneck(Tensor.concatenated([features[3], tokenMap], axis: 1))
        trace?("D4", x)
        for (index, level) in [3, 2, 1].enumerated() {
            x = levels[index](x, skip: features[level - 1])
            if let source = modulation.first(where: { $0.level == level })?.by {
                trace?("D\(level).unmodulated", x)
                switch source {
                case .kernels(let kernels):
                    // A cost trace charges the DynConv to the level it modulates.
                    let filtered = CostTracer.scope(levels[index]) {
                        applyPixelKernels(x, kernels: kernels, kernelSize: kernelSize)
                    }
                    x = x + filtered
                case .feature(let feature):
                    x = x + feature
                }
            }
            trace?("D\(level)", x)
        }
        let x0 = output(x)
        trace?("D0", x0)
        return x0
    }
}
