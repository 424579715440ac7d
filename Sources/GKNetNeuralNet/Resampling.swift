// Pooling and upsampling layers (PyTorch nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
// nn.Upsample(mode="bilinear")). Legend: N batch, C channels, H W spatial, K kernel size.
import GKNetTensorCore

/// Max pooling over K x K windows (padding counts as -infinity).
/// - Shapes: [N, C, H, W] -> [N, C, (H + 2p - K) / s + 1, (W + 2p - K) / s + 1].
public final class MaxPool2d: Layer {
    public let kernelSize: Int, stride: Int, padding: Int
    public var isTraining = true
    /// `stride` defaults to `kernelSize`, as in PyTorch.
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        maxPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding)
    }
}

/// Average pooling over K x K windows; zero padding is counted (PyTorch count_include_pad=True).
/// - Shapes: as `MaxPool2d`.
public final class AvgPool2d: Layer {
    public let kernelSize: Int, stride: Int, padding: Int
    public var isTraining = true
    public init(kernelSize: Int, stride: Int? = nil, padding: Int = 0) {
        (self.kernelSize, self.stride, self.padding) = (kernelSize, stride ?? kernelSize, padding)
    }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        avgPool2d(x, kernelSize: kernelSize, stride: stride, padding: padding)
    }
}

/// Average pooling to a fixed output size (PyTorch's adaptive windows).
/// - Shapes: [N, C, H, W] -> [N, C, outputHeight, outputWidth].
public final class AdaptiveAvgPool2d: Layer {
    public let outputHeight: Int, outputWidth: Int
    public var isTraining = true
    public init(outputHeight: Int, outputWidth: Int) {
        (self.outputHeight, self.outputWidth) = (outputHeight, outputWidth)
    }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        adaptiveAvgPool2d(x, outputHeight: outputHeight, outputWidth: outputWidth)
    }
}

/// Bilinear upsampling by an integer factor (PyTorch nn.Upsample(scale_factor=s, mode="bilinear",
/// align_corners=False); for integer factors PyTorch's source coordinates are the same as resizing
/// to the output size).
/// - Shapes: [N, C, H, W] -> [N, C, sH, sW].
public final class Upsample: Layer {
    public let scaleFactor: Int
    public var isTraining = true
    public init(scaleFactor: Int) {
        precondition(scaleFactor >= 1, "Upsample: scale factor \(scaleFactor) must be at least 1")
        self.scaleFactor = scaleFactor
    }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "Upsample: input \(x.shape) must be [N, C, H, W]")
        return resizeBilinear(x, height: x.shape[2] * scaleFactor, width: x.shape[3] * scaleFactor)
    }
}
