// GKNet against its PyTorch twin (Scripts/reference/gknet.py, fixtures from
// Scripts/fixtures/model_gknet.py): eval and train outputs, the loss, every parameter gradient,
// BatchNorm running statistics after the step, and the losses of 5 Adam steps.
import Foundation
import Testing
import GKNetModel
import NeuralNet
import TensorCore
import _TestSupport

/// A fixture file: the model config, the initial state and the reference results.
struct ModelFixture {
    let file: SafeTensorsFile
    let configuration: GKNetConfiguration

    static let resultPrefixes = ["grad.", "after.", "adam.", "eval.", "eval_wide.", "train.", "input.", "trace."]

    init(_ name: String) throws {
        file = try Fixtures.load("model_gknet/\(name).safetensors")
        let json = try #require(file.metadata["config"])
        configuration = try JSONDecoder().decode(GKNetConfiguration.self, from: Data(json.utf8))
    }

    /// The model's initial state (weights and buffers).
    var state: [String: NamedTensor] {
        file.tensors.filter { entry in !Self.resultPrefixes.contains { entry.key.hasPrefix($0) } }
    }

    func model() throws -> GKNet {
        let model = try GKNet(configuration: configuration, seed: 1)
        try model.load(stateDictionary: state, strict: true)
        return model
    }

    func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
}

/// max |a - e| / max |e| over the tensor (a relative error that is robust to near-zero entries).
func relativeMaxError(_ actual: [Float], _ expected: [Float]) -> Float {
    var maxDifference: Float = 0
    var maxExpected: Float = 0
    for (a, e) in zip(actual, expected) {
        maxDifference = max(maxDifference, abs(a - e))
        maxExpected = max(maxExpected, abs(e))
    }
    return maxDifference.isNaN ? .infinity : maxDifference / max(maxExpected, 1e-12)
}

let modelFixtures = [
    "tiny", "narrow", "narrow_no_lre", "narrow_no_scf", "narrow_no_kernel_modulation", "narrow_kernel_size_5",
    "narrow_kernel_levels_1", "narrow_scf_top_k_8", "narrow_scf_background_bias", "narrow_learned_blend",
    "narrow_output_residual", "narrow_output_affine",
]

@Suite struct GKNetParityTests {
    @Test(arguments: modelFixtures)
    func evalForwardMatchesTwin(fixture name: String) throws {
        let fixture = try ModelFixture(name)
        let model = try fixture.model()
        model.eval()
        let output = withoutGradient { model(composite: try! fixture.tensor("input.composite"), mask: try! fixture.tensor("input.mask")) }
        let expected = try fixture.tensor("eval.output")
        #expect(output.shape == expected.shape)
        let error = relativeMaxError(output.data, expected.data)
        #expect(error <= 1e-4, "\(name) eval output relative error \(error)")
        if fixture.file.tensors["eval_wide.output"] != nil {
            let wide = withoutGradient { model(composite: try! fixture.tensor("eval_wide.composite"), mask: try! fixture.tensor("eval_wide.mask")) }
            let wideError = relativeMaxError(wide.data, try fixture.tensor("eval_wide.output").data)
            #expect(wideError <= 1e-4, "\(name) 64x96 eval output relative error \(wideError)")
        }
    }

    @Test(arguments: modelFixtures)
    func trainingStepMatchesTwin(fixture name: String) throws {
        let fixture = try ModelFixture(name)
        let model = try fixture.model()
        model.train()
        let mask = try fixture.tensor("input.mask")
        let output = model(composite: try fixture.tensor("input.composite"), mask: mask)
        let loss = foregroundNormalizedMSE(output: output, target: try fixture.tensor("input.target"), mask: mask)
        let outputError = relativeMaxError(output.data, try fixture.tensor("train.output").data)
        #expect(outputError <= 1e-4, "\(name) train output relative error \(outputError)")
        let expectedLoss = try fixture.tensor("train.loss")
        let lossError = relativeMaxError(loss.data, expectedLoss.data)
        #expect(lossError <= 1e-4, "\(name) loss \(loss.item) vs \(expectedLoss.item)")
        loss.backward()
        var failures: [String] = []
        var checked = 0
        for (parameterName, parameter) in model.namedParameters() {
            guard let expected = fixture.file.tensors["grad.\(parameterName)"] else {
                failures.append("\(parameterName): no reference gradient")
                continue
            }
            let error = relativeMaxError(parameter.grad ?? [Float](repeating: 0, count: parameter.count), expected.values)
            if !(error <= 1e-3) { failures.append("\(parameterName): relative error \(error)") }
            checked += 1
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) of \(checked) gradients differ: \(failures.prefix(8).joined(separator: "; "))")
        #expect(checked == fixture.file.tensors.keys.filter { $0.hasPrefix("grad.") }.count)
        for (bufferName, buffer) in model.namedBuffers() {
            let expected = try fixture.tensor("after.\(bufferName)")
            let error = relativeMaxError(buffer.data, expected.data)
            #expect(error <= 1e-4, "\(name) \(bufferName) after the step: relative error \(error)")
        }
    }

    @Test(arguments: ["tiny", "narrow", "narrow_no_lre", "narrow_no_scf", "narrow_no_kernel_modulation", "narrow_output_residual", "narrow_output_affine"])
    func fiveAdamStepsMatchTwin(fixture name: String) throws {
        let fixture = try ModelFixture(name)
        let model = try fixture.model()
        model.train()
        let composite = try fixture.tensor("input.composite"), mask = try fixture.tensor("input.mask"), target = try fixture.tensor("input.target")
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        var losses: [Float] = []
        for _ in 0..<5 {
            model.zeroGrad()
            let loss = foregroundNormalizedMSE(output: model(composite: composite, mask: mask), target: target, mask: mask)
            loss.backward()
            optimizer.step()
            losses.append(loss.item)
        }
        let after = withoutGradient { foregroundNormalizedMSE(output: model(composite: composite, mask: mask), target: target, mask: mask) }
        let expected = try fixture.tensor("adam.losses").data
        let comparison = compare(losses, expected, relativeTolerance: 1e-4, absoluteTolerance: 0, label: "\(name) Adam losses")
        #expect(comparison.passed, "\(comparison)")
        let expectedAfter = try fixture.tensor("adam.loss_after").data
        let afterComparison = compare(after.data, expectedAfter, relativeTolerance: 1e-4, absoluteTolerance: 0, label: "\(name) loss after 5 steps")
        #expect(afterComparison.passed, "\(afterComparison)")
    }
}
