// Normalization layers (PyTorch nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm).
// Legend: N batch, C channels, H W spatial, G groups.
import GKNetTensorCore

/// Batch normalization per channel over N, H and W.
///
/// Training: normalizes with the batch mean and biased variance, and updates the running
/// statistics in place (running = (1 - momentum) running + momentum batch, with the unbiased
/// variance) and `num_batches_tracked`. Evaluation: normalizes with the running statistics.
/// - Shapes: x [N, C, H, W]; weight, bias, running statistics [C]; num_batches_tracked [].
/// - State: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked` (PyTorch names).
public final class BatchNorm2d: Layer {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVariance: Tensor
    public let numBatchesTracked = Tensor(scalar: 0)
    public let momentum: Float, epsilon: Float
    public var isTraining = true
    /// Synchronized batch norm: in training, normalise with the statistics of every process's batch
    /// of a data-parallel job, added up by this hook (TensorCore `batchNorm(synchronizedBy:)`).
    /// nil (the default): this process's batch alone.
    public var crossProcessSum: CrossProcessSum?

    /// Whether `num_batches_tracked` is part of the state (PyTorch always has it; models that fix
    /// the momentum, like GKNet and its twin, leave it out).
    public let tracksBatchCount: Bool

    public init(
        channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5, affine: Bool = true, trackBatchCount: Bool = true
    ) {
        tracksBatchCount = trackBatchCount
        weight = affine ? Initializers.ones([channels]) : nil
        bias = affine ? Initializers.zeros([channels]) : nil
        runningMean = Tensor.zeros([channels])
        runningVariance = Tensor.ones([channels])
        (self.momentum, self.epsilon) = (momentum, epsilon)
    }

    public var members: [ModuleMember] {
        (weight.map { [.parameter("weight", $0)] } ?? []) + (bias.map { [.parameter("bias", $0)] } ?? []) + [
            .buffer("running_mean", runningMean), .buffer("running_var", runningVariance),
        ] + (tracksBatchCount ? [.buffer("num_batches_tracked", numBatchesTracked, integer: true)] : [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(
            x.rank == 4 && x.shape[1] == runningMean.count,
            "BatchNorm2d: input \(x.shape) and running mean \(runningMean.shape): need [N, \(runningMean.count), H, W]")
        if isTraining { numBatchesTracked.data[0] += 1 }
        return batchNorm(
            x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
            training: isTraining, momentum: momentum, epsilon: epsilon, synchronizedBy: crossProcessSum)
    }

    /// `(self(x) + residual).elu(alpha: alpha)` (no residual: `self(x).elu(alpha:)`) in one fused op
    /// (TensorCore `batchNormELU`): one pass over the data, and the backward pass keeps x and the
    /// output only.
    public func normalizeThenELU(_ x: Tensor, adding residual: Tensor? = nil, alpha: Float = 1) -> Tensor {
        precondition(
            x.rank == 4 && x.shape[1] == runningMean.count,
            "BatchNorm2d: input \(x.shape) and running mean \(runningMean.shape): need [N, \(runningMean.count), H, W]")
        if isTraining { numBatchesTracked.data[0] += 1 }
        return batchNormELU(
            x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
            training: isTraining, momentum: momentum, epsilon: epsilon, residual: residual, alpha: alpha,
            synchronizedBy: crossProcessSum)
    }
}

/// Layer normalization over the trailing `normalizedShape` dimensions.
///
/// - Shapes: x [..., normalizedShape]; weight, bias `normalizedShape` (ones and zeros at start).
/// - State: `weight`, `bias`.
public final class LayerNorm: Layer {
    public let normalizedShape: [Int]
    public let weight: Tensor?
    public let bias: Tensor?
    public let epsilon: Float
    public var isTraining = true

    public init(normalizedShape: [Int], epsilon: Float = 1e-5, elementwiseAffine: Bool = true) {
        self.normalizedShape = normalizedShape
        weight = elementwiseAffine ? Initializers.ones(normalizedShape) : nil
        bias = elementwiseAffine ? Initializers.zeros(normalizedShape) : nil
        self.epsilon = epsilon
    }

    /// LayerNorm over the last axis of width `dimension`.
    public convenience init(dimension: Int, epsilon: Float = 1e-5) {
        self.init(normalizedShape: [dimension], epsilon: epsilon)
    }

    public var members: [ModuleMember] {
        (weight.map { [.parameter("weight", $0)] } ?? []) + (bias.map { [.parameter("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layerNorm(x, normalizedShape: normalizedShape, weight: weight, bias: bias, epsilon: epsilon)
    }
}

/// Group normalization: channels split into G groups, each normalized over its channels and all
/// spatial positions, then a per-channel affine map. Composed: a weightless layer norm over
/// x reshaped to [N, G, C/G * H * W], reshaped back, times weight plus bias.
///
/// - Shapes: x [N, C, ...] with G dividing C; weight, bias [C].
/// - State: `weight`, `bias`.
public final class GroupNorm: Layer {
    public let groups: Int
    public let weight: Tensor?
    public let bias: Tensor?
    public let epsilon: Float
    public var isTraining = true

    public init(groups: Int, channels: Int, epsilon: Float = 1e-5, affine: Bool = true) {
        precondition(
            groups >= 1 && channels % groups == 0, "GroupNorm: \(channels) channels do not split into \(groups) groups")
        self.groups = groups
        weight = affine ? Initializers.ones([channels]) : nil
        bias = affine ? Initializers.zeros([channels]) : nil
        self.epsilon = epsilon
    }

    public var members: [ModuleMember] {
        (weight.map { [.parameter("weight", $0)] } ?? []) + (bias.map { [.parameter("bias", $0)] } ?? [])
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(
            x.rank >= 2 && x.shape[1] % groups == 0,
            "GroupNorm: input \(x.shape) has channels that do not split into \(groups) groups")
        let perGroup = x.count / (x.shape[0] * groups)
        let normalized = layerNorm(
            x.reshaped([x.shape[0], groups, perGroup]), normalizedShape: [perGroup], weight: nil, bias: nil,
            epsilon: epsilon
        )
        .reshaped(x.shape)
        // Per-channel affine, broadcast as [1, C, 1, ...].
        let channelShape = [1, x.shape[1]] + [Int](repeating: 1, count: x.rank - 2)
        var y = normalized
        if let weight { y = y * weight.reshaped(channelShape) }
        if let bias { y = y + bias.reshaped(channelShape) }
        return y
    }
}
