// Fully connected layer (PyTorch nn.Linear). Legend: N batch (any leading dims), C input
// features, O output features.
import GKNetTensorCore

/// y = x W^T + b.
///
/// - Shapes: x [..., C] (rank >= 2) -> y [..., O]; weight [O, C]; bias [O].
/// - Initialization: PyTorch's default, W and b ~ U(-1/sqrt(C), 1/sqrt(C)).
/// - State: `weight`, `bias`.
public final class Linear: Layer {
    public let weight: Tensor
    public let bias: Tensor?
    public var isTraining = true

    public init(inputFeatures: Int, outputFeatures: Int, bias: Bool = true, generator: inout SplitMix64) {
        precondition(
            inputFeatures > 0 && outputFeatures > 0,
            "Linear: features must be positive (\(inputFeatures) -> \(outputFeatures))")
        weight = Initializers.pytorchDefaultWeight([outputFeatures, inputFeatures], generator: &generator)
        self.bias =
            bias ? Initializers.pytorchDefaultBias(outputFeatures, fanIn: inputFeatures, generator: &generator) : nil
    }

    public var inputFeatures: Int { weight.shape[1] }
    public var outputFeatures: Int { weight.shape[0] }

    public var members: [ModuleMember] {
        [.parameter("weight", weight)] + (bias.map { [.parameter("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(
            x.rank >= 2 && x.shape.last == inputFeatures,
            "Linear: input \(x.shape) and weight \(weight.shape): need [..., \(inputFeatures)] with rank >= 2")
        return linear(x, weight: weight, bias: bias)
    }
}
