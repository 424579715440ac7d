// A chain of layers (PyTorch nn.Sequential): children are named "0", "1", ... in the state_dict.
import GKNetTensorCore

/// Applies its layers in order.
/// - State: each layer's entries under its index, e.g. `0.weight`, `1.running_mean`.
public final class Sequential: Layer {
    public let layers: [any Layer]
    public var isTraining = true

    public init(_ layers: [any Layer]) { self.layers = layers }

    public var members: [ModuleMember] { layers.enumerated().map { .child(String($0.offset), $0.element) } }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        layers.reduce(x) { $1($0) }
    }
}
