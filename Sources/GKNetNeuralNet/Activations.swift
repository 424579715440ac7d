// Activation functions as a Codable choice (for configurations) and as layers (for Sequential).
import GKNetTensorCore

/// An elementwise nonlinearity.
public enum Activation: Codable, Sendable, Equatable {
    case identity
    case relu
    case leakyRelu(slope: Float)
    case elu(alpha: Float)
    case gelu(GELUApproximation)
    case sigmoid
    case tanh

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .identity: x
        case .relu: x.relu()
        case .leakyRelu(let slope): x.leakyRelu(slope: slope)
        case .elu(let alpha): x.elu(alpha: alpha)
        case .gelu(let approximation): x.gelu(approximation: approximation)
        case .sigmoid: x.sigmoid()
        case .tanh: x.tanh()
        }
    }
}

extension GELUApproximation: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        switch text {
        case "none": self = .none
        case "tanh": self = .tanh
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "GELU approximation \"\(text)\" (none or tanh)")
            )
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self == .none ? "none" : "tanh")
    }
}

/// A parameterless layer applying a configurable `Activation`.
public final class ActivationLayer: Layer {
    public let activation: Activation
    public var isTraining = true
    public init(_ activation: Activation) { self.activation = activation }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { activation(x) }
}

/// PyTorch-named activation layers (nn.ReLU, nn.LeakyReLU, ...): parameterless, no state.
public final class ReLU: Layer {
    public var isTraining = true
    public init() {}
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.relu() }
}

public final class LeakyReLU: Layer {
    public let slope: Float
    public var isTraining = true
    public init(slope: Float = 0.01) { self.slope = slope }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.leakyRelu(slope: slope) }
}

public final class ELU: Layer {
    public let alpha: Float
    public var isTraining = true
    public init(alpha: Float = 1) { self.alpha = alpha }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.elu(alpha: alpha) }
}

public final class GELU: Layer {
    public let approximation: GELUApproximation
    public var isTraining = true
    public init(approximation: GELUApproximation = .none) { self.approximation = approximation }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.gelu(approximation: approximation) }
}

public final class Sigmoid: Layer {
    public var isTraining = true
    public init() {}
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.sigmoid() }
}

public final class Tanh: Layer {
    public var isTraining = true
    public init() {}
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x.tanh() }
}

public final class Identity: Layer {
    public var isTraining = true
    public init() {}
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { x }
}
