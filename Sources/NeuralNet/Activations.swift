// Activation functions as a Codable choice (for configurations) and as layers (for Sequential).
import TensorCore

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
        default: throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "GELU approximation \"\(text)\" (none or tanh)"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(self == .none ? "none" : "tanh")
    }
}

/// A parameterless layer applying an `Activation` (PyTorch nn.ReLU, nn.GELU, ...).
public final class ActivationLayer: Layer {
    public let activation: Activation
    public var isTraining = true
    public init(_ activation: Activation) { self.activation = activation }
    public var members: [ModuleMember] { [] }
    public func callAsFunction(_ x: Tensor) -> Tensor { activation(x) }
}

/// PyTorch-named constructors: `ReLU()`, `LeakyReLU(slope: 0.2)`, `ELU()`, `GELU()`, `Sigmoid()`, `Tanh()`.
public func ReLU() -> ActivationLayer { ActivationLayer(.relu) }
public func LeakyReLU(slope: Float = 0.01) -> ActivationLayer { ActivationLayer(.leakyRelu(slope: slope)) }
public func ELU(alpha: Float = 1) -> ActivationLayer { ActivationLayer(.elu(alpha: alpha)) }
public func GELU(approximation: GELUApproximation = .none) -> ActivationLayer { ActivationLayer(.gelu(approximation)) }
public func Sigmoid() -> ActivationLayer { ActivationLayer(.sigmoid) }
public func Tanh() -> ActivationLayer { ActivationLayer(.tanh) }
public func Identity() -> ActivationLayer { ActivationLayer(.identity) }
