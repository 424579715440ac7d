// Dropout with its own seeded generator, so runs are reproducible and training checkpoints can
// save the generator (TrainingCheckpoint stores every Dropout's state automatically).
import GKNetTensorCore

/// Inverted dropout (PyTorch nn.Dropout): in training, each element is zeroed with probability p
/// and the survivors are scaled by 1 / (1 - p); in evaluation, the identity.
/// - Shapes: any.
/// - State: none in the state_dict; the generator is part of training checkpoints.
public final class Dropout: Layer {
    public let probability: Float
    public var generator: SplitMix64
    public var isTraining = true

    public init(probability: Float, seed: UInt64 = 0) {
        precondition(probability >= 0 && probability <= 1, "Dropout: probability \(probability) is not in [0, 1]")
        self.probability = probability
        generator = SplitMix64(seed: seed)
    }

    public var members: [ModuleMember] { [] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return x }
        let scale = probability < 1 ? 1 / (1 - probability) : 0
        var mask = [Float](repeating: 0, count: x.count)
        for i in mask.indices where generator.nextUniform() >= probability { mask[i] = scale }
        return x * Tensor(shape: x.shape, data: mask)
    }
}
