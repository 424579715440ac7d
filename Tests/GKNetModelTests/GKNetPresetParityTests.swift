// The full-size presets (`small`, `paper`) against the PyTorch twin at 64x64, batch 2, from a
// synthetic initial state (SyntheticState; fixtures from Scripts/fixtures/model_gknet_presets.py):
// eval and train outputs, the loss, BatchNorm statistics after the step, the losses of 5 Adam steps,
// and every parameter gradient through 64 sampled elements, its max, norm and a random projection.
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// A preset fixture: configuration, inputs and reference results (no weights).
private struct PresetFixture {
    static let seed: UInt64 = 20_261_204
    static let projectionSalt: UInt64 = 0x5_DEEC_E66D
    let file: SafeTensorsFile
    let configuration: GKNetConfiguration

    init(_ name: String) throws {
        file = try Fixtures.load("model_gknet_presets/\(name).safetensors")
        configuration = try JSONDecoder().decode(
            GKNetConfiguration.self, from: Data(try #require(file.metadata["config"]).utf8))
    }

    func model() throws -> GKNet {
        let model = try GKNet(configuration: configuration, seed: 1)
        SyntheticState.apply(to: model.namedParameters() + model.namedBuffers(), seed: Self.seed)
        return model
    }

    func tensor(_ name: String) throws -> Tensor { try file.tensor(name) }
}

@Suite struct GKNetPresetParityTests {
    @Test(arguments: ["small", "paper"])
    func matchesTwin(preset name: String) throws {
        let fixture = try PresetFixture(name)
        #expect(
            fixture.configuration == (try GKNetConfiguration.preset(name)),
            "the fixture's configuration is the preset's")
        let model = try fixture.model()
        let composite = try fixture.tensor("input.composite"), mask = try fixture.tensor("input.mask"),
            target = try fixture.tensor("input.target")
        var comparisons: [Comparison] = []

        model.eval()
        let evaluated = withoutGradient { model(composite: composite, mask: mask) }
        comparisons.append(
            compareToScale(
                evaluated, try fixture.tensor("eval.output"), tolerance: TwinTolerance.values,
                label: "\(name) eval output"))

        model.train()
        let output = model(composite: composite, mask: mask)
        let loss = foregroundNormalizedMSE(output: output, target: target, mask: mask)
        comparisons.append(
            compareToScale(
                output, try fixture.tensor("train.output"), tolerance: TwinTolerance.values,
                label: "\(name) train output"))
        comparisons.append(
            compareToScale(
                loss.data, try fixture.tensor("train.loss").data, tolerance: TwinTolerance.values, label: "\(name) loss"
            ))
        loss.backward()
        for (bufferName, buffer) in model.namedBuffers() where !bufferName.hasSuffix("num_batches_tracked") {
            comparisons.append(
                compareToScale(
                    buffer, try fixture.tensor("after.\(bufferName)"), tolerance: TwinTolerance.values,
                    label: "\(name) \(bufferName) after"))
        }

        let parameters = model.namedParameters()
        #expect(
            parameters.count == fixture.file.tensors.keys.filter { $0.hasPrefix("gradstats.") }.count,
            "one reference per parameter")
        for (parameterName, parameter) in parameters {
            let gradient = parameter.grad ?? [Float](repeating: 0, count: parameter.count)
            let indices = SyntheticState.sampleIndices(count: gradient.count)
            let stats = try fixture.tensor("gradstats.\(parameterName)").data  // max |g|, ||g||, projection
            // The samples, element-wise, on the scale of the whole gradient (its max |g|).
            let expected = try fixture.tensor("gradsample.\(parameterName)").data
            let scale = stats[0]
            comparisons.append(
                compare(
                    indices.map { gradient[$0] }, expected, relativeTolerance: TwinTolerance.gradients,
                    absoluteTolerance: TwinTolerance.gradients * scale, label: "\(name) grad \(parameterName) samples"))
            // The whole gradient: its max, norm and projection on a fixed random direction s.
            let s = SyntheticState.uniformStream(
                seed: SyntheticState.fnv1a64(parameterName) ^ PresetFixture.seed ^ PresetFixture.projectionSalt,
                count: gradient.count)
            var (largest, squares, projection, sSquares) = (0.0, 0.0, 0.0, 0.0)
            for (g, r) in zip(gradient, s) {
                largest = max(largest, abs(Double(g)))
                squares += Double(g) * Double(g)
                projection += Double(g) * Double(r)
                sSquares += Double(r) * Double(r)
            }
            let tolerance = Double(TwinTolerance.gradients)
            let norm = squares.squareRoot()
            // |Δ(g·s)| <= |Δg| |s|: a relative error t of the gradient vector moves the projection at
            // most t ||g|| ||s||.
            let bounds = [
                (largest, Double(stats[0]), tolerance * Double(stats[0]), "max"),
                (norm, Double(stats[1]), tolerance * Double(stats[1]), "norm"),
                (projection, Double(stats[2]), tolerance * Double(stats[1]) * sSquares.squareRoot(), "projection"),
            ]
            for (actual, wanted, bound, what) in bounds {
                comparisons.append(
                    compare(actual, wanted, bound: bound, label: "\(name) grad \(parameterName) \(what)"))
            }
        }

        // 5 Adam steps from the same initial state on the same batch.
        let trainer = try fixture.model()
        trainer.train()
        let optimizer = Adam(parameters: trainer.namedParameters(), learningRate: 1e-3)
        var losses: [Float] = []
        for _ in 0..<5 {
            trainer.zeroGrad()
            let stepLoss = foregroundNormalizedMSE(
                output: trainer(composite: composite, mask: mask), target: target, mask: mask)
            stepLoss.backward()
            optimizer.step()
            losses.append(stepLoss.item)
        }
        let after = withoutGradient {
            foregroundNormalizedMSE(output: trainer(composite: composite, mask: mask), target: target, mask: mask)
        }
        comparisons += compareAdamTrajectory(
            losses + after.data,
            reference: try fixture.tensor("adam.losses").data + fixture.tensor("adam.loss_after").data,
            base: TwinTolerance.values, label: name)

        for comparison in comparisons { #expect(comparison.passed, "\(comparison)") }
    }
}
