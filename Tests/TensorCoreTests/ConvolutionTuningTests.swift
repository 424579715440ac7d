// Measured backends for training convolutions (`ConvolutionTuning`): a measurement records a choice
// that agrees with its own times, inference is never measured, and `conv2d` then runs exactly the
// chosen (or adopted) backend, forward and backward, bit for bit.
import GKNetTestSupport
import Testing

@testable import GKNetTensorCore

@Suite struct ConvolutionTuningTests {
    /// 16 -> 16 channels, 3x3, padding 1, on 2 x 12 x 12: Winograd supports it, so both backends compete.
    static let geometry = ConvolutionGeometry(
        batch: 2, inputChannels: 16, inputHeight: 12, inputWidth: 12, outputChannels: 16, kernelSize: 3, padding: 1)

    struct Operands {
        var x, weight, bias, dOutput: Tensor
        init() {
            var generator = SplitMix64(seed: 41)
            let g = ConvolutionTuningTests.geometry
            x = Tensor.uniform([2, 16, 12, 12], low: -1, high: 1, generator: &generator, requiresGrad: true)
            weight = Tensor.uniform([16, 16, 3, 3], low: -0.1, high: 0.1, generator: &generator, requiresGrad: true)
            bias = Tensor.uniform([16], low: -0.1, high: 0.1, generator: &generator, requiresGrad: true)
            dOutput = Tensor.uniform([2, 16, g.outputHeight, g.outputWidth], low: -1, high: 1, generator: &generator)
        }
    }

    /// conv2d's output and gradients (x, weight, bias) under `tuning`.
    static func convolve(_ operands: Operands, _ tuning: ConvolutionTuning) -> [[Float]] {
        ConvolutionTuning.$current.withValue(tuning) {
            let output = conv2d(operands.x, weight: operands.weight, bias: operands.bias, padding: 1)
            for tensor in [operands.x, operands.weight, operands.bias] { tensor.grad = nil }
            (output * operands.dOutput).sum().backward()
            return [output.data, operands.x.grad!, operands.weight.grad!, operands.bias.grad!]
        }
    }

    /// The same through the kernels with `backend` named.
    static func kernels(_ operands: Operands, _ backend: ConvolutionBackend) -> [[Float]] {
        let g = geometry
        var output = [Float](repeating: 0, count: g.outputCount)
        var dx = [Float](repeating: 0, count: g.inputCount), dw = [Float](repeating: 0, count: g.weightCount)
        var db = [Float](repeating: 0, count: g.outputChannels)
        convolutionForward(
            output: &output, input: operands.x.data, weight: operands.weight.data, bias: operands.bias.data,
            geometry: g, training: true, backend: backend)
        convolutionBackward(
            dInput: &dx, dWeight: &dw, dBias: &db, dOutput: operands.dOutput.data, input: operands.x.data,
            weight: operands.weight.data, geometry: g, accumulate: false, backend: backend)
        return [output, dx, dw, db]
    }

    @Test(.enabled(if: oneDNN.runsTests, Comment(rawValue: oneDNN.skipMessage)))
    func aMeasuredChoiceAgreesWithItsTimesAndInferenceIsNotMeasured() throws {
        try oneDNN.require()
        let operands = Operands()
        let tuning = ConvolutionTuning(measuring: true)
        _ = ConvolutionTuning.$current.withValue(tuning) {
            withoutGradient { conv2d(operands.x, weight: operands.weight, bias: operands.bias, padding: 1) }
        }
        #expect(tuning.plan.entries.isEmpty, "inference was measured: \(tuning.plan)")
        let result = Self.convolve(operands, tuning)
        let entries = tuning.plan.entries
        try #require(entries.count == 1, "\(entries)")
        let entry = entries[0]
        #expect(
            entry.key == ConvolutionTuning.Key(Self.geometry, inputGradient: true, weightGradient: true, bias: true))
        let winograd = try #require(entry.winogradSeconds), oneDNNTime = try #require(entry.oneDNNSeconds)
        #expect(winograd > 0 && oneDNNTime > 0 && winograd.isFinite && oneDNNTime.isFinite)
        #expect(entry.choice == (oneDNNTime < winograd ? .oneDNN : .winograd))
        #expect(result == Self.kernels(operands, entry.choice.backend), "conv2d did not run the measured backend")
        // A second call uses the choice without measuring again.
        _ = Self.convolve(operands, tuning)
        #expect(tuning.plan.entries == entries)
    }

    @Test(.enabled(if: oneDNN.runsTests, Comment(rawValue: oneDNN.skipMessage)))
    func anAdoptedChoiceIsTheBackendThatRuns() throws {
        try oneDNN.require()
        let operands = Operands()
        let key = ConvolutionTuning.Key(Self.geometry, inputGradient: true, weightGradient: true, bias: true)
        let expected = [ConvolutionTuning.Choice.winograd, .oneDNN].map { Self.kernels(operands, $0.backend) }
        // The two backends round differently here, so running the wrong one cannot pass unnoticed.
        #expect(expected[0][0] != expected[1][0], "Winograd and oneDNN gave identical outputs")
        for (index, choice) in [ConvolutionTuning.Choice.winograd, .oneDNN].enumerated() {
            let tuning = ConvolutionTuning(measuring: true)
            tuning.adopt(ConvolutionTuning.Plan(entries: [.init(key: key, choice: choice)]))
            #expect(Self.convolve(operands, tuning) == expected[index], "\(choice)")
            #expect(tuning.plan.entries.count == 1 && tuning.plan.entries[0].winogradSeconds == nil, "measured again")
        }
    }
}
