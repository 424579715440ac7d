// Small composite units shared by the GKNet blocks: Conv -> BatchNorm -> ELU and Conv -> ELU.
// Names follow the twin: `conv.weight`, `norm.{weight,bias,running_mean,running_var}`.
import GKNetNeuralNet
import GKNetTensorCore

/// ELU(BN(conv(x))) with a bias-free convolution (a Conv2d or a ConvTranspose2d).
final class ConvNormELU: Module {
    enum Kind { case convolution(Conv2d), transposed(ConvTranspose2d) }
    let kind: Kind
    let norm: BatchNorm2d
    var isTraining = true

    /// Conv k x k, stride, padding ("same" for 3x3 / 1x1 with padding k/2).
    init(
        _ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int? = nil,
        generator: inout SplitMix64
    ) {
        kind = .convolution(
            Conv2d(
                inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
                stride: stride, padding: padding ?? kernelSize / 2, bias: false, generator: &generator))
        norm = BatchNorm2d(channels: outputChannels, trackBatchCount: false)
    }

    /// "Up": ConvTranspose 4x4, stride 2, padding 1 (doubles H and W).
    init(upsampling inputChannels: Int, _ outputChannels: Int, generator: inout SplitMix64) {
        kind = .transposed(
            ConvTranspose2d(
                inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: 4, stride: 2, padding: 1,
                bias: false, generator: &generator))
        norm = BatchNorm2d(channels: outputChannels, trackBatchCount: false)
    }

    var members: [ModuleMember] {
        switch kind {
        case .convolution(let conv): [.child("conv", conv), .child("norm", norm)]
        case .transposed(let conv): [.child("conv", conv), .child("norm", norm)]
        }
    }

    /// N x C_in x H x W -> N x C_out x H' x W'.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let convolved: Tensor
        switch kind {
        case .convolution(let conv): convolved = conv(x)
        case .transposed(let conv): convolved = conv(x)
        }
        return norm.normalizeThenELU(convolved)
    }
}

/// ELU(conv(x) + b).
final class ConvELU: Module {
    let conv: Conv2d
    var isTraining = true

    init(_ inputChannels: Int, _ outputChannels: Int, kernelSize: Int, generator: inout SplitMix64) {
        conv = Conv2d(
            inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
            padding: kernelSize / 2, bias: true, generator: &generator)
    }

    var members: [ModuleMember] { [.child("conv", conv)] }

    func callAsFunction(_ x: Tensor) -> Tensor { conv(x).elu() }
}
