// Parameter initialization with PyTorch's formulas (torch.nn.init), drawn from a seeded SplitMix64
// so that a seed always gives the same model. The distributions match PyTorch; the random streams
// do not (PyTorch uses its own generator), so parity tests copy weights instead of re-drawing them.
import Foundation
import GKNetTensorCore

/// The nonlinearity that follows a layer, for the gain of the Kaiming initializers
/// (PyTorch `nn.init.calculate_gain`).
public enum Nonlinearity: Sendable, Equatable {
    case linear, sigmoid, tanh, relu, selu
    /// Leaky ReLU with this negative slope; PyTorch's layer defaults use `leakyRelu(sqrt(5))`.
    case leakyRelu(Float)

    /// linear, sigmoid: 1; tanh: 5/3; relu: sqrt(2); leaky ReLU: sqrt(2 / (1 + slope^2)); SELU: 3/4.
    public var gain: Float {
        switch self {
        case .linear, .sigmoid: 1
        case .tanh: 5.0 / 3.0
        case .relu: Float(2).squareRoot()
        case .leakyRelu(let slope): (2 / (1 + slope * slope)).squareRoot()
        case .selu: 0.75
        }
    }
}

/// Which fan the Kaiming initializers preserve the variance of.
public enum FanMode: Sendable {
    case fanIn, fanOut
}

/// `torch.nn.init` as functions returning fresh tensors.
///
/// Fans follow PyTorch `_calculate_fan_in_and_fan_out`: for a weight of shape [A, B, K...],
/// fanIn = B * prod(K) and fanOut = A * prod(K). So Linear [O, C] has fanIn C; Conv2d
/// [O, C/groups, K, K] has fanIn C/groups * K * K; ConvTranspose2d [C, O/groups, K, K] has fanIn
/// O/groups * K * K (PyTorch's convention, kept for identical defaults).
public enum Initializers {
    /// (fanIn, fanOut) of a weight shape of rank >= 2.
    public static func fans(_ shape: [Int]) -> (fanIn: Int, fanOut: Int) {
        precondition(shape.count >= 2, "fans: weight shape \(shape) needs at least 2 dimensions")
        let receptiveField = shape.dropFirst(2).reduce(1, *)
        return (shape[1] * receptiveField, shape[0] * receptiveField)
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape, requiresGrad: true) }

    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape, requiresGrad: true) }

    public static func constant(_ value: Float, _ shape: [Int]) -> Tensor {
        Tensor(repeating: value, shape: shape, requiresGrad: true)
    }

    /// U(low, high).
    public static func uniform(_ shape: [Int], low: Float, high: Float, generator: inout SplitMix64) -> Tensor {
        Tensor.uniform(shape, low: low, high: high, generator: &generator, requiresGrad: true)
    }

    /// N(mean, std^2).
    public static func normal(_ shape: [Int], mean: Float = 0, std: Float, generator: inout SplitMix64) -> Tensor {
        Tensor.normal(shape, mean: mean, std: std, generator: &generator, requiresGrad: true)
    }

    /// U(-b, b) with b = gain * sqrt(3 / fan) (PyTorch `kaiming_uniform_`).
    public static func kaimingUniform(
        _ shape: [Int], nonlinearity: Nonlinearity = .leakyRelu(0), mode: FanMode = .fanIn, generator: inout SplitMix64
    ) -> Tensor {
        let bound = nonlinearity.gain * (3 / Float(fan(shape, mode))).squareRoot()
        return uniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// N(0, std^2) with std = gain / sqrt(fan) (PyTorch `kaiming_normal_`).
    public static func kaimingNormal(
        _ shape: [Int], nonlinearity: Nonlinearity = .leakyRelu(0), mode: FanMode = .fanIn, generator: inout SplitMix64
    ) -> Tensor {
        let std = nonlinearity.gain / Float(fan(shape, mode)).squareRoot()
        return normal(shape, std: std, generator: &generator)
    }

    /// U(-b, b) with b = gain * sqrt(6 / (fanIn + fanOut)) (PyTorch `xavier_uniform_`).
    public static func xavierUniform(_ shape: [Int], gain: Float = 1, generator: inout SplitMix64) -> Tensor {
        let (fanIn, fanOut) = fans(shape)
        let bound = gain * (6 / Float(fanIn + fanOut)).squareRoot()
        return uniform(shape, low: -bound, high: bound, generator: &generator)
    }

    /// N(0, std^2) with std = gain * sqrt(2 / (fanIn + fanOut)) (PyTorch `xavier_normal_`).
    public static func xavierNormal(_ shape: [Int], gain: Float = 1, generator: inout SplitMix64) -> Tensor {
        let (fanIn, fanOut) = fans(shape)
        let std = gain * (2 / Float(fanIn + fanOut)).squareRoot()
        return normal(shape, std: std, generator: &generator)
    }

    /// N(mean, std^2) restricted to [low, high] (absolute bounds, as PyTorch `trunc_normal_`,
    /// default [-2, 2]). Samples outside are redrawn (PyTorch inverts the CDF instead; the
    /// distribution is the same).
    /// - Precondition: the interval holds non-negligible probability (within 6 std of the mean).
    public static func truncatedNormal(
        _ shape: [Int], mean: Float = 0, std: Float = 1, low: Float = -2, high: Float = 2, generator: inout SplitMix64
    ) -> Tensor {
        precondition(
            low < high && high > mean - 6 * std && low < mean + 6 * std,
            "truncatedNormal: [\(low), \(high)] is empty or too far from N(\(mean), \(std)^2)")
        var values = [Float](repeating: 0, count: shape.elementCount)
        for i in values.indices {
            var sample: Float
            repeat { sample = mean + std * generator.nextNormal() } while sample < low || sample > high
            values[i] = sample
        }
        return Tensor(shape: shape, data: values, requiresGrad: true)
    }

    /// PyTorch's default for Conv*/Linear weights: `kaiming_uniform_(w, a=sqrt(5))`, i.e.
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    public static func pytorchDefaultWeight(_ shape: [Int], generator: inout SplitMix64) -> Tensor {
        kaimingUniform(shape, nonlinearity: .leakyRelu(Float(5).squareRoot()), generator: &generator)
    }

    /// PyTorch's default for Conv*/Linear biases: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) with the fanIn of
    /// the weight (zero fanIn gives a zero bound).
    public static func pytorchDefaultBias(_ count: Int, fanIn: Int, generator: inout SplitMix64) -> Tensor {
        let bound: Float = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
        return uniform([count], low: -bound, high: bound, generator: &generator)
    }

    private static func fan(_ shape: [Int], _ mode: FanMode) -> Int {
        let (fanIn, fanOut) = fans(shape)
        let value = mode == .fanIn ? fanIn : fanOut
        precondition(value > 0, "initializer: weight shape \(shape) has a zero fan")
        return value
    }
}
