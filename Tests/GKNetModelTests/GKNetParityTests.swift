// GKNet against its PyTorch twin (Scripts/reference/gknet.py, fixtures from
// Scripts/fixtures/model_gknet.py): eval and train outputs, the loss, every parameter gradient,
// BatchNorm running statistics after the step, the intermediates of the narrow configuration, and
// the losses of 5 Adam steps, element-wise within `TwinTolerance` (every fixture is checked against
// float64 when generated: ~1e-6 outputs, ~7e-6 gradients, so a correct float32 port lands close).
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

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

    /// The bound for one kind of result ("eval", "train", "trace", "grad", "after", "adam.losses",
    /// ...): `floor`, or 4x the fixture's own float32-vs-float64 difference for that kind when
    /// that is larger (metadata `float64_agreement`; e.g. 1.4e-5 for narrow_learned_blend's eval
    /// output): a correct float32 port cannot be held closer to PyTorch's float32 than that, and 4x
    /// is the margin every parity tolerance keeps over its measured spread (docs/robustness.md).
    func tolerance(_ kind: String, floor: Float) -> Float {
        guard let json = file.metadata["fixture"],
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let agreement = object["float64_agreement"] as? [String: Double], let measured = agreement[kind]
        else { return floor }
        return max(floor, Float(4 * measured))
    }
}

/// Bounds of the element-wise parity checks (`compareToScale`: |a - e| <= t * (max |e| + |e|)),
/// raised per fixture where PyTorch's own float32 result is further from float64 (`tolerance`).
enum TwinTolerance {
    /// Outputs, intermediates, the loss, running statistics and Adam losses (step 0; later steps widen
    /// by `trajectoryGrowth`). 4x the worst measured: 0.44 of 1e-5 (paper train output, 0.28) and of a
    /// fixture's own float64-derived bound (narrow_learned_blend eval, 0.44 of 2.8e-5); docs/robustness.md.
    static let values: Float = 2e-5
    /// Parameter gradients (worst measured: 0.22 of this, paper kpb.2.scf.gate.fc1.bias).
    static let gradients: Float = 5e-5
    /// How much the bound on an Adam trajectory's loss widens per step (`compareAdamTrajectory`): the
    /// loss after 5 steps of `small` moved 0.94 of a flat 1e-5 bound under SSE4.1 oneDNN + generic
    /// OpenBLAS and 1.48 on an AMD EPYC in a full `make test` (issue 21); (1 + k) x 2e-5 gives 12x at step 5.
    static let trajectoryGrowth: Float = 1
}

/// The losses of an Adam trajectory (steps 0..<n, then the loss after the last step) against the twin's,
/// step k within `base` x (1 + `TwinTolerance.trajectoryGrowth` x k) of the loss (compareToScale of the
/// one value): rounding differences change each step's update, and Adam's normalised step turns a
/// gradient that is rounding noise into an update of up to the learning rate, so the distance between
/// two correct implementations grows with every step (measured: docs/robustness.md "Tolerances from
/// measured spread").
func compareAdamTrajectory(_ losses: [Float], reference: [Float], base: Float, label: String) -> [Comparison] {
    guard losses.count == reference.count else {
        return [compare(losses, reference, label: "\(label) Adam trajectory length")]
    }
    return losses.indices.map { step in
        compareToScale(
            [losses[step]], [reference[step]], tolerance: base * (1 + TwinTolerance.trajectoryGrowth * Float(step)),
            label: "\(label) Adam loss \(step)")
    }
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
        let output = withoutGradient {
            model(composite: try! fixture.tensor("input.composite"), mask: try! fixture.tensor("input.mask"))
        }
        let comparison = compareToScale(
            output, try fixture.tensor("eval.output"),
            tolerance: fixture.tolerance("eval", floor: TwinTolerance.values), label: "\(name) eval output")
        #expect(comparison.passed, "\(comparison)")
        if fixture.file.tensors["eval_wide.output"] != nil {
            let wide = withoutGradient {
                model(
                    composite: try! fixture.tensor("eval_wide.composite"), mask: try! fixture.tensor("eval_wide.mask"))
            }
            let wideComparison = compareToScale(
                wide, try fixture.tensor("eval_wide.output"),
                tolerance: fixture.tolerance("eval_wide", floor: TwinTolerance.values),
                label: "\(name) 64x96 eval output")
            #expect(wideComparison.passed, "\(wideComparison)")
        }
    }

    @Test(arguments: modelFixtures)
    func trainingStepMatchesTwin(fixture name: String) throws {
        let fixture = try ModelFixture(name)
        let model = try fixture.model()
        model.train()
        let mask = try fixture.tensor("input.mask")
        var intermediates: [String: Tensor] = [:]
        let output = model(composite: try fixture.tensor("input.composite"), mask: mask) { intermediates[$0] = $1 }
        let loss = foregroundNormalizedMSE(output: output, target: try fixture.tensor("input.target"), mask: mask)
        let outputComparison = compareToScale(
            output, try fixture.tensor("train.output"),
            tolerance: fixture.tolerance("train", floor: TwinTolerance.values), label: "\(name) train output")
        #expect(outputComparison.passed, "\(outputComparison)")
        let lossComparison = compareToScale(
            loss.data, try fixture.tensor("train.loss").data,
            tolerance: fixture.tolerance("train", floor: TwinTolerance.values), label: "\(name) loss")
        #expect(lossComparison.passed, "\(lossComparison)")
        // The named intermediates (narrow: trace.E1...D0 and train.prediction), every one the fixture has.
        let traced = fixture.file.tensors.keys.filter { $0.hasPrefix("trace.") || $0 == "train.prediction" }.sorted()
        for key in traced {
            let label = key == "train.prediction" ? "prediction" : String(key.dropFirst("trace.".count))
            guard let actual = intermediates[label] else {
                Issue.record("\(name): the Swift forward traces no \(label) (fixture has \(key))")
                continue
            }
            let comparison = compareToScale(
                actual, try fixture.tensor(key),
                tolerance: fixture.tolerance(key.hasPrefix("trace.") ? "trace" : "train", floor: TwinTolerance.values),
                label: "\(name) \(key)")
            #expect(comparison.passed, "\(comparison)")
        }
        if name == "narrow" {
            #expect(traced.count == 18, "narrow fixture: \(traced.count) intermediates, 18 expected")
        }
        loss.backward()
        var failures: [String] = []
        var checked = 0
        for (parameterName, parameter) in model.namedParameters() {
            guard let expected = fixture.file.tensors["grad.\(parameterName)"] else {
                failures.append("\(parameterName): no reference gradient")
                continue
            }
            let comparison = compareToScale(
                parameter.grad ?? [Float](repeating: 0, count: parameter.count), expected.values,
                tolerance: fixture.tolerance("grad", floor: TwinTolerance.gradients),
                label: parameterName)
            if !comparison.passed { failures.append("\(comparison)") }
            checked += 1
        }
        #expect(
            failures.isEmpty,
            "\(name): \(failures.count) of \(checked) gradients differ: \(failures.prefix(8).joined(separator: "; "))")
        #expect(checked == fixture.file.tensors.keys.filter { $0.hasPrefix("grad.") }.count)
        for (bufferName, buffer) in model.namedBuffers() {
            let comparison = compareToScale(
                buffer, try fixture.tensor("after.\(bufferName)"),
                tolerance: fixture.tolerance("after", floor: TwinTolerance.values),
                label: "\(name) \(bufferName) after the step")
            #expect(comparison.passed, "\(comparison)")
        }
    }

    @Test(arguments: modelFixtures)
    func fiveAdamStepsMatchTwin(fixture name: String) throws {
        let fixture = try ModelFixture(name)
        let model = try fixture.model()
        model.train()
        let composite = try fixture.tensor("input.composite"), mask = try fixture.tensor("input.mask"),
            target = try fixture.tensor("input.target")
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        var losses: [Float] = []
        for _ in 0..<5 {
            model.zeroGrad()
            let loss = foregroundNormalizedMSE(
                output: model(composite: composite, mask: mask), target: target, mask: mask)
            loss.backward()
            optimizer.step()
            losses.append(loss.item)
        }
        let after = withoutGradient {
            foregroundNormalizedMSE(output: model(composite: composite, mask: mask), target: target, mask: mask)
        }
        let trajectory = compareAdamTrajectory(
            losses + after.data,
            reference: try fixture.tensor("adam.losses").data + fixture.tensor("adam.loss_after").data,
            base: fixture.tolerance("adam.losses", floor: TwinTolerance.values), label: name)
        for comparison in trajectory { #expect(comparison.passed, "\(comparison)") }
    }
}
