// phi_E, the encoder (docs/model.md, "Encoder"; rows E1..E4 of "Layer by layer"): four stages,
// each Down (Conv 4x4, stride 2) + BN + ELU followed by a residual block. F_E^l has C_l channels
// at H / 2^l.
import GKNetNeuralNet
import GKNetTensorCore

/// Res(C) = ELU(x + BN2(Conv3x3(ELU(BN1(Conv3x3(x)))))). Names conv1, norm1, conv2, norm2.
final class ResidualBlock: Module {
    let conv1: Conv2d, norm1: BatchNorm2d, conv2: Conv2d, norm2: BatchNorm2d
    var isTraining = true

    init(channels: Int, generator: inout SplitMix64) {
        conv1 = Conv2d(
            inputChannels: channels, outputChannels: channels, kernelSize: 3, padding: 1, bias: false,
            generator: &generator)
        norm1 = BatchNorm2d(channels: channels, trackBatchCount: false)
        conv2 = Conv2d(
            inputChannels: channels, outputChannels: channels, kernelSize: 3, padding: 1, bias: false,
            generator: &generator)
        norm2 = BatchNorm2d(channels: channels, trackBatchCount: false)
    }

    var members: [ModuleMember] {
        [.child("conv1", conv1), .child("norm1", norm1), .child("conv2", conv2), .child("norm2", norm2)]
    }

    /// N x C x H x W -> same shape.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let y = norm1.normalizeThenELU(conv1(x))
        return norm2.normalizeThenELU(conv2(y), adding: x)
    }
}

/// E_l: Down(C_in -> C_l) + BN + ELU, then Res(C_l). Names `down.*`, `res.*`.
final class EncoderStage: Module {
    let down: ConvNormELU, res: ResidualBlock
    var isTraining = true

    init(inputChannels: Int, outputChannels: Int, generator: inout SplitMix64) {
        down = ConvNormELU(inputChannels, outputChannels, kernelSize: 4, stride: 2, padding: 1, generator: &generator)
        res = ResidualBlock(channels: outputChannels, generator: &generator)
    }

    var members: [ModuleMember] { [.child("down", down), .child("res", res)] }

    /// N x C_in x H x W -> N x C_l x H/2 x W/2.
    func callAsFunction(_ x: Tensor) -> Tensor { res(down(x)) }
}

/// The encoder: `stages.1` ... `stages.4` produce F_E^1 (H/2) ... F_E^4 (H/16).
final class FeatureEncoder: Module {
    let stages: [EncoderStage]
    var isTraining = true

    init(configuration: GKNetConfiguration, generator: inout SplitMix64) {
        let widths = [4] + configuration.encoderWidths
        var stages: [EncoderStage] = []
        for level in 1...4 {
            stages.append(
                EncoderStage(inputChannels: widths[level - 1], outputChannels: widths[level], generator: &generator))
        }
        self.stages = stages
    }

    var members: [ModuleMember] { stages.enumerated().map { .child("stages.\($0.offset + 1)", $0.element) } }

    /// x: N x 4 x H x W -> [F_E^1, F_E^2, F_E^3, F_E^4] (index l - 1).
    func callAsFunction(_ x: Tensor) -> [Tensor] {
        var features: [Tensor] = []
        var current = x
        for stage in stages {
            current = stage(current)
            features.append(current)
        }
        return features
    }
}
