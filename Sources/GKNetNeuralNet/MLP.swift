// The transformer feed-forward block (timm `Mlp`): fc1 -> activation -> dropout -> fc2 -> dropout.
// Legend: C input features, F hidden features, O output features.
import GKNetTensorCore

/// Two linear layers with an activation between them.
///
/// - Shapes: x [..., C] -> [..., O]; fc1 weight [F, C], fc2 weight [O, F].
/// - State: `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`.
public final class MLP: Layer {
    public let fc1: Linear
    public let fc2: Linear
    public let activation: Activation
    public let dropout: Dropout
    public var isTraining = true

    /// - Parameters:
    ///   - dropout: probability after the activation and after fc2 (0 = none).
    ///   - dropoutSeed: seeds the dropout mask generator.
    public init(
        inputFeatures: Int, hiddenFeatures: Int, outputFeatures: Int? = nil, activation: Activation = .gelu(.none),
        dropout: Float = 0, dropoutSeed: UInt64 = 0, generator: inout SplitMix64
    ) {
        fc1 = Linear(inputFeatures: inputFeatures, outputFeatures: hiddenFeatures, generator: &generator)
        fc2 = Linear(
            inputFeatures: hiddenFeatures, outputFeatures: outputFeatures ?? inputFeatures, generator: &generator)
        self.activation = activation
        self.dropout = Dropout(probability: dropout, seed: dropoutSeed)
    }

    public var members: [ModuleMember] { [.child("fc1", fc1), .child("drop", dropout), .child("fc2", fc2)] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        dropout(fc2(dropout(activation(fc1(x)))))
    }
}
