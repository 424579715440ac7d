// Convolution layers (PyTorch nn.Conv2d, nn.ConvTranspose2d) over the TensorCore ops.
// Legend: N batch, C input channels, O output channels, H W spatial, K kernel size, G groups.
import GKNetTensorCore

/// 2-D convolution with square kernels, zero padding.
///
/// - Shapes: x [N, C, H, W] -> [N, O, Ho, Wo], Ho = (H + 2p - d(K - 1) - 1) / s + 1;
///   weight [O, C/G, K, K]; bias [O].
/// - Initialization: PyTorch's default, U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with fanIn = C/G * K * K.
/// - State: `weight`, `bias`.
public final class Conv2d: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int, dilation: Int, groups: Int
    public var isTraining = true

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        dilation: Int = 1, groups: Int = 1, bias: Bool = true, generator: inout SplitMix64
    ) {
        precondition(
            groups >= 1 && inputChannels % groups == 0 && outputChannels % groups == 0,
            "Conv2d: channels \(inputChannels) -> \(outputChannels) must be multiples of groups \(groups)")
        let shape = [outputChannels, inputChannels / groups, kernelSize, kernelSize]
        weight = Initializers.pytorchDefaultWeight(shape, generator: &generator)
        self.bias =
            bias
            ? Initializers.pytorchDefaultBias(
                outputChannels, fanIn: Initializers.fans(shape).fanIn, generator: &generator) : nil
        (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    }

    public var members: [ModuleMember] {
        [.parameter("weight", weight)] + (bias.map { [.parameter("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// 2-D transposed convolution (the adjoint of `Conv2d`, used for learned upsampling).
///
/// - Shapes: x [N, C, H, W] -> [N, O, Ho, Wo], Ho = (H - 1)s - 2p + d(K - 1) + outputPadding + 1;
///   weight [C, O/G, K, K] (PyTorch layout); bias [O].
/// - Initialization: PyTorch's default with PyTorch's fanIn for this layout, O/G * K * K.
/// - State: `weight`, `bias`.
public final class ConvTranspose2d: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int, outputPadding: Int, dilation: Int, groups: Int
    public var isTraining = true

    public init(
        inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
        outputPadding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true, generator: inout SplitMix64
    ) {
        precondition(
            groups >= 1 && inputChannels % groups == 0 && outputChannels % groups == 0,
            "ConvTranspose2d: channels \(inputChannels) -> \(outputChannels) must be multiples of groups \(groups)")
        let shape = [inputChannels, outputChannels / groups, kernelSize, kernelSize]
        weight = Initializers.pytorchDefaultWeight(shape, generator: &generator)
        self.bias =
            bias
            ? Initializers.pytorchDefaultBias(
                outputChannels, fanIn: Initializers.fans(shape).fanIn, generator: &generator) : nil
        (self.stride, self.padding, self.outputPadding, self.dilation, self.groups) = (
            stride, padding, outputPadding, dilation, groups
        )
    }

    public var members: [ModuleMember] {
        [.parameter("weight", weight)] + (bias.map { [.parameter("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        convTranspose2d(
            x, weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding,
            dilation: dilation, groups: groups)
    }
}
