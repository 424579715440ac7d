// Invariants of the GKNet model that hold for any weights or at initialisation.
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import Testing

private func randomInputs(n: Int = 1, height: Int = 64, width: Int = 64, seed: UInt64 = 3) -> (Tensor, Tensor) {
    var generator = SplitMix64(seed: seed)
    let composite = Tensor.uniform([n, 3, height, width], generator: &generator)
    // A binary rectangle plus a soft edge column.
    var mask = [Float](repeating: 0, count: n * height * width)
    for b in 0..<n {
        for y in (height / 4)..<(3 * height / 4) {
            for x in (width / 4)..<(width / 2) { mask[(b * height + y) * width + x] = 1 }
            mask[(b * height + y) * width + width / 2] = 0.5
        }
    }
    return (composite, Tensor(shape: [n, 1, height, width], data: mask))
}

@Suite struct GKNetInvariantTests {
    @Test func zeroInitialisedKernelHeadsChangeNothing() throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("tiny"), seed: 5)
        let (composite, mask) = randomInputs()
        var traced: [String: Tensor] = [:]
        _ = withoutGradient { model(composite: composite, mask: mask, trace: { traced[$0] = $1 }) }
        for level in [3, 2, 1] {
            let kernels = try #require(traced["K\(level)"])
            #expect(kernels.data.allSatisfy { $0 == 0 }, "K\(level) is not zero at initialisation")
            let before = try #require(traced["D\(level).unmodulated"]), after = try #require(traced["D\(level)"])
            #expect(before.data == after.data, "kernel modulation changed decoder level \(level)")
        }
    }

    @Test(arguments: [OutputBlend.mask])
    func backgroundEqualsCompositeExactly(blend: OutputBlend) throws {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.outputBlend = blend
        let model = try GKNet(configuration: configuration, seed: 9)
        // Make the kernel heads non-zero so every path is active.
        var generator = SplitMix64(seed: 1)
        for (name, parameter) in model.namedParameters() where name.contains("kernel_head.conv2") {
            parameter.data = Tensor.normal(parameter.shape, std: 0.05, generator: &generator).data
        }
        let (composite, mask) = randomInputs(n: 2, height: 48, width: 80)
        model.eval()
        let output = withoutGradient { model(composite: composite, mask: mask) }
        var background = 0
        for i in 0..<output.count {
            let plane = 48 * 80
            let n = i / (3 * plane), p = i % plane
            if mask.data[n * plane + p] == 0 {
                background += 1
                #expect(output.data[i] == composite.data[i], "background pixel \(i) changed")
                if output.data[i] != composite.data[i] { break }
            }
        }
        #expect(background > 0)
    }

    @Test func everyShapeOfSpecSection9ForThePaperPreset() throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("paper"), seed: 0)
        model.eval()
        let (composite, mask) = randomInputs(n: 1, height: 256, width: 256)
        var shapes: [String: [Int]] = [:]
        let output = withoutGradient { model(composite: composite, mask: mask, trace: { shapes[$0] = $1.shape }) }
        let expected: [String: [Int]] = [
            "E1": [1, 64, 128, 128], "E2": [1, 128, 64, 64], "E3": [1, 256, 32, 32], "E4": [1, 512, 16, 16],
            "G": [1, 256, 256], "G_map": [1, 256, 16, 16],
            "P3": [1, 256, 32, 32], "K3": [1, 144, 32, 32],
            "P2": [1, 128, 64, 64], "K2": [1, 72, 64, 64],
            "P1": [1, 64, 128, 128], "K1": [1, 36, 128, 128],
            "D4": [1, 512, 16, 16], "D3": [1, 256, 32, 32], "D2": [1, 128, 64, 64], "D1": [1, 64, 128, 128],
            "D0": [1, 32, 256, 256], "prediction": [1, 3, 256, 256],
        ]
        for (name, shape) in expected {
            #expect(shapes[name] == shape, "\(name): \(shapes[name] ?? []) vs docs/model.md \(shape)")
        }
        #expect(output.shape == [1, 3, 256, 256])
        #expect(model.parameterCount == 18_732_287)
    }

    @Test func presetParameterCountsMatchTheTwin() throws {
        // docs/model-parameters.md (generated from the PyTorch twin)
        let expected = ["small": 4_310_849, "tiny": 1_089_042]
        for (preset, count) in expected {
            let model = try GKNet(configuration: try GKNetConfiguration.preset(preset), seed: 0)
            #expect(model.parameterCount == count, "\(preset): \(model.parameterCount) parameters")
        }
    }

    @Test func invalidConfigurationsAreRejectedWithTheField() throws {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.kernelSize = 4
        #expect(throws: ConfigurationError.self) { try GKNet(configuration: configuration) }
        configuration = try GKNetConfiguration.preset("tiny")
        configuration.inputSize = 100
        do {
            _ = try GKNet(configuration: configuration)
            Issue.record("input_size 100 was accepted")
        } catch let error as ConfigurationError {
            #expect(error.description.contains("input_size"))
        }
        #expect(throws: ConfigurationError.self) { try GKNetConfiguration.preset("huge") }
    }

    @Test func configurationJSONUsesTheTwinsKeysAndRoundTrips() throws {
        let configuration = try GKNetConfiguration.preset("small")
        let data = try JSONEncoder().encode(configuration)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["use_lre"] as? Bool == true)
        #expect(object["encoder_widths"] as? [Int] == [32, 64, 128, 256])
        #expect(try JSONDecoder().decode(GKNetConfiguration.self, from: data) == configuration)
    }
}
