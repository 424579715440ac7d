import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// PyTorch parity for every layer: forward, input gradients, parameter gradients and buffers after
/// the forward pass, from Tests/Fixtures/nn_layers (Scripts/fixtures/nn_layers.py). The fixture's
/// state_dict is loaded strictly, so these tests also pin our parameter and buffer names.
@Suite struct LayerParityTests {
    typealias Forward = ([String: Tensor]) -> Tensor

    /// Builds the layer a fixture describes and the function that runs it on the fixture inputs.
    static func build(_ name: String, _ c: [String: Any]) -> (any Module, Forward) {
        var g = SplitMix64(seed: 5)
        func int(_ key: String) -> Int { c[key] as! Int }
        func float(_ key: String) -> Float { Float(c[key] as! Double) }
        func unary(_ layer: some Layer) -> (any Module, Forward) { (layer, { layer($0["x"]!) }) }
        switch name {
        case "linear", "linear_3d_nobias":
            return unary(
                Linear(
                    inputFeatures: int("inputs"), outputFeatures: int("outputs"), bias: c["bias"] as! Bool,
                    generator: &g))
        case "conv2d", "conv2d_grouped_dilated":
            return unary(
                Conv2d(
                    inputChannels: int("inputs"), outputChannels: int("outputs"), kernelSize: int("kernel"),
                    stride: int("stride"),
                    padding: int("padding"), dilation: int("dilation"), groups: int("groups"), bias: c["bias"] as! Bool,
                    generator: &g))
        case "conv_transpose2d", "conv_transpose2d_grouped":
            return unary(
                ConvTranspose2d(
                    inputChannels: int("inputs"), outputChannels: int("outputs"), kernelSize: int("kernel"),
                    stride: int("stride"),
                    padding: int("padding"), outputPadding: int("output_padding"), dilation: int("dilation"),
                    groups: int("groups"), bias: c["bias"] as! Bool, generator: &g))
        case "batchnorm2d_train", "batchnorm2d_eval":
            return unary(BatchNorm2d(channels: int("channels"), momentum: float("momentum"), epsilon: float("eps")))
        case "layernorm", "layernorm_2d":
            return unary(LayerNorm(normalizedShape: c["shape"] as! [Int], epsilon: float("eps")))
        case "groupnorm":
            return unary(GroupNorm(groups: int("groups"), channels: int("channels"), epsilon: float("eps")))
        case "mha_self":
            // PyTorch got three leaves with equal values; we pass one tensor (the fused path) and
            // compare its gradient with the sum of the three.
            let attention = MultiHeadAttention(dimension: int("dim"), heads: int("heads"), generator: &g)
            return (attention, { attention($0["x"]!) })
        case "mha_cross", "mha_cross_kdim":
            let attention = MultiHeadAttention(
                dimension: int("dim"), heads: int("heads"), keyDimension: int("kdim"),
                valueDimension: int("vdim"), generator: &g)
            return (attention, { attention(query: $0["query"]!, key: $0["key"]!, value: $0["value"]!) })
        case "mlp", "mlp_tanh":
            let approximation: GELUApproximation = c["approximate"] as! String == "tanh" ? .tanh : .none
            return unary(
                MLP(
                    inputFeatures: int("inputs"), hiddenFeatures: int("hidden"), outputFeatures: int("outputs"),
                    activation: .gelu(approximation), generator: &g))
        case "upsample_bilinear": return unary(Upsample(scaleFactor: int("scale")))
        case "maxpool2d":
            return unary(MaxPool2d(kernelSize: int("kernel"), stride: int("stride"), padding: int("padding")))
        case "avgpool2d":
            return unary(AvgPool2d(kernelSize: int("kernel"), stride: int("stride"), padding: int("padding")))
        case "adaptive_avgpool2d":
            return unary(AdaptiveAvgPool2d(outputHeight: int("height"), outputWidth: int("width")))
        case "sequential":
            return unary(
                Sequential([
                    Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, generator: &g),
                    BatchNorm2d(channels: 4), ELU(),
                    Conv2d(inputChannels: 4, outputChannels: 2, kernelSize: 1, generator: &g),
                ]))
        case "act_relu": return unary(ReLU())
        case "act_leaky_relu": return unary(LeakyReLU(slope: 0.2))
        case "act_elu": return unary(ELU(alpha: 0.7))
        case "act_gelu": return unary(GELU())
        case "act_gelu_tanh": return unary(GELU(approximation: .tanh))
        case "act_sigmoid": return unary(Sigmoid())
        case "act_tanh": return unary(Tanh())
        default: fatalError("no layer for fixture \(name)")
        }
    }

    static let cases = [
        "linear", "linear_3d_nobias", "conv2d", "conv2d_grouped_dilated", "conv_transpose2d",
        "conv_transpose2d_grouped",
        "batchnorm2d_train", "batchnorm2d_eval", "layernorm", "layernorm_2d", "groupnorm", "mha_self", "mha_cross",
        "mha_cross_kdim", "mlp", "mlp_tanh", "act_relu", "act_leaky_relu", "act_elu", "act_gelu", "act_gelu_tanh",
        "act_sigmoid", "act_tanh", "upsample_bilinear", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "sequential",
    ]

    /// Fixture names of the attention wrapper carry an `attention.` prefix.
    static func moduleName(_ fixtureName: String) -> String {
        fixtureName.hasPrefix("attention.") ? String(fixtureName.dropFirst("attention.".count)) : fixtureName
    }

    @Test(arguments: cases)
    func matchesPyTorch(name: String) throws {
        let file = try Fixtures.load("nn_layers/\(name).safetensors")
        let config = try JSONSerialization.jsonObject(with: Data(file.metadata["config"]!.utf8)) as! [String: Any]
        let (module, forward) = Self.build(name, config)
        module.train(file.metadata["training"] == "True")

        var state: [String: NamedTensor] = [:]
        for (key, tensor) in file.tensors where key.hasPrefix("state.") {
            state[Self.moduleName(String(key.dropFirst("state.".count)))] = tensor
        }
        try module.load(stateDictionary: state, strict: true)

        var inputs: [String: Tensor] = [:]
        for key in file.tensors.keys where key.hasPrefix("input.") {
            inputs[String(key.dropFirst("input.".count))] = try file.tensor(key)
        }
        if name == "mha_self" { inputs = ["x": inputs["query"]!] }
        for tensor in inputs.values { tensor.requiresGrad = true }

        let output = forward(inputs)
        let forwardCheck = compare(
            output, try file.tensor("output"), relativeTolerance: 1e-5, absoluteTolerance: 1e-6, label: "\(name) output"
        )
        #expect(forwardCheck.passed, "\(forwardCheck)")
        (output * (try file.tensor("seed"))).sum().backward()

        for (key, tensor) in inputs {
            let expected =
                name == "mha_self"
                ? try file.tensor("grad.input.query") + file.tensor("grad.input.key") + file.tensor("grad.input.value")
                : try file.tensor("grad.input.\(key)")
            let c = compare(
                try #require(tensor.gradTensor), expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-5,
                label: "\(name) d\(key)")
            #expect(c.passed, "\(c)")
        }
        let parameters = Dictionary(uniqueKeysWithValues: module.namedParameters())
        var checkedGradients = 0
        for key in file.tensors.keys.sorted() where key.hasPrefix("grad.") && !key.hasPrefix("grad.input.") {
            let parameterName = Self.moduleName(String(key.dropFirst("grad.".count)))
            let parameter = try #require(parameters[parameterName], "\(name): no parameter \(parameterName)")
            let c = compare(
                try #require(parameter.gradTensor, "\(name): \(parameterName) has no gradient"), try file.tensor(key),
                relativeTolerance: 1e-4, absoluteTolerance: 1e-5, label: "\(name) d\(parameterName)")
            #expect(c.passed, "\(c)")
            checkedGradients += 1
        }
        #expect(
            checkedGradients == parameters.count,
            "\(name): \(checkedGradients) of \(parameters.count) parameter gradients checked")
        let buffers = Dictionary(uniqueKeysWithValues: module.namedBuffers())
        for key in file.tensors.keys where key.hasPrefix("after.") {
            let bufferName = Self.moduleName(String(key.dropFirst("after.".count)))
            let c = compare(
                try #require(buffers[bufferName]), try file.tensor(key), relativeTolerance: 1e-5,
                absoluteTolerance: 1e-6, label: "\(name) \(bufferName)")
            #expect(c.passed, "\(c)")
        }
    }
}
