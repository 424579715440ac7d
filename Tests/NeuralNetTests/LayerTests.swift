import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Layer behaviour that parity fixtures cannot show: names, defaults, modes, dropout.
@Suite struct LayerTests {
    @Test func pytorchDefaultInitialization() {
        var g = SplitMix64(seed: 3)
        let conv = Conv2d(inputChannels: 8, outputChannels: 16, kernelSize: 3, groups: 2, generator: &g)
        let bound = 1 / Float(4 * 9).squareRoot()
        #expect(conv.weight.shape == [16, 4, 3, 3] && conv.weight.data.allSatisfy { abs($0) <= bound })
        #expect(conv.bias!.data.allSatisfy { abs($0) <= bound } && conv.weight.requiresGrad && conv.bias!.requiresGrad)
        let up = ConvTranspose2d(
            inputChannels: 8, outputChannels: 6, kernelSize: 4, stride: 2, padding: 1, generator: &g)
        #expect(
            up.weight.shape == [8, 6, 4, 4] && up.weight.data.allSatisfy { abs($0) <= 1 / Float(6 * 16).squareRoot() })
        let attention = MultiHeadAttention(dimension: 8, heads: 2, generator: &g)
        #expect(
            attention.inProjBias!.data.allSatisfy { $0 == 0 } && attention.outProj.bias!.data.allSatisfy { $0 == 0 })
        #expect(attention.inProjWeight!.data.allSatisfy { abs($0) <= (6 / Float(32)).squareRoot() })
        let norm = BatchNorm2d(channels: 3)
        #expect(
            norm.weight!.data == [1, 1, 1] && norm.bias!.data == [0, 0, 0] && norm.runningVariance.data == [1, 1, 1])
    }

    @Test func stateDictNamesMatchPyTorch() {
        var g = SplitMix64(seed: 3)
        let packed = MultiHeadAttention(dimension: 8, heads: 2, generator: &g)
        #expect(
            packed.stateEntries().map(\.name) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"])
        let separate = MultiHeadAttention(dimension: 8, heads: 2, keyDimension: 4, valueDimension: 4, generator: &g)
        #expect(
            separate.stateEntries().map(\.name) == [
                "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias",
            ])
        let block = Sequential([
            Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, generator: &g), BatchNorm2d(channels: 4), ReLU(),
            MLP(inputFeatures: 4, hiddenFeatures: 8, generator: &g), LayerNorm(dimension: 4),
            GroupNorm(groups: 2, channels: 4),
        ])
        #expect(
            block.stateEntries().map(\.name) == [
                "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
                "3.fc1.weight", "3.fc1.bias", "3.fc2.weight", "3.fc2.bias", "4.weight", "4.bias", "5.weight", "5.bias",
            ])
    }

    @Test func batchNormCountsBatchesOnlyInTraining() {
        let norm = BatchNorm2d(channels: 2)
        let x = Tensor(shape: [2, 2, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8])
        _ = norm(x)
        _ = norm(x)
        #expect(norm.numBatchesTracked.data == [2])
        // channel 0 holds 1, 2, 5, 6: mean 3.5, unbiased variance 5.667
        #expect(abs(norm.runningMean.data[0] - (0.9 * 0.35 + 0.1 * 3.5)) < 1e-6)
        norm.eval()
        let before = norm.runningMean.data
        let y = norm(x)
        #expect(norm.numBatchesTracked.data == [2] && norm.runningMean.data == before)
        let expected = (Float(1) - before[0]) / (norm.runningVariance.data[0] + 1e-5).squareRoot()
        #expect(abs(y.data[0] - expected) < 1e-6)
    }

    @Test func dropoutIsSeededScaledAndOffInEvaluation() {
        let x = Tensor(repeating: 1, shape: [100, 100], requiresGrad: true)
        let dropout = Dropout(probability: 0.25, seed: 11)
        let y = dropout(x)
        let kept = y.data.filter { $0 != 0 }
        #expect(kept.allSatisfy { $0 == Float(1) / 0.75 })
        #expect(abs(Double(kept.count) / 10_000 - 0.75) < 0.02)
        y.sum().backward()
        #expect(x.grad! == y.data)  // d/dx (x * mask) = mask, and x = 1
        #expect(Dropout(probability: 0.25, seed: 11)(x).data == y.data)
        #expect(dropout(x).data != y.data)  // the generator moved on
        dropout.eval()
        #expect(dropout(x) === x)
        #expect(Dropout(probability: 1)(x).data.allSatisfy { $0 == 0 })
    }

    @Test func attentionGradientsMatchFiniteDifferences() {
        var g = SplitMix64(seed: 8)
        let attention = MultiHeadAttention(dimension: 4, heads: 2, keyDimension: 3, valueDimension: 5, generator: &g)
        let q = Tensor.normal([1, 3, 4], generator: &g), k = Tensor.normal([1, 2, 3], generator: &g),
            v = Tensor.normal([1, 2, 5], generator: &g)
        let report = checkGradients(of: { attention(query: $0[0], key: $0[1], value: $0[2]) }, at: [q, k, v])
        #expect(report.passed, "\(report)")
    }

    @Test func configurableActivationLayerMatchesTheNamedOnes() {
        var g = SplitMix64(seed: 4)
        let x = Tensor.normal([3, 7], generator: &g)
        let pairs: [(Activation, any Layer)] = [
            (.relu, ReLU()), (.leakyRelu(slope: 0.1), LeakyReLU(slope: 0.1)), (.elu(alpha: 0.5), ELU(alpha: 0.5)),
            (.gelu(.tanh), GELU(approximation: .tanh)), (.sigmoid, Sigmoid()), (.tanh, Tanh()), (.identity, Identity()),
        ]
        for (activation, layer) in pairs {
            #expect(ActivationLayer(activation)(x).data == layer(x).data, "\(activation)")
        }
    }

    @Test func activationsAreCodable() throws {
        let all: [Activation] = [
            .identity, .relu, .leakyRelu(slope: 0.2), .elu(alpha: 1), .gelu(.tanh), .gelu(.none), .sigmoid, .tanh,
        ]
        let data = try JSONEncoder().encode(all)
        #expect(try JSONDecoder().decode([Activation].self, from: data) == all)
    }
}
