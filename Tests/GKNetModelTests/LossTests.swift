// The composite-relative training loss (Loss.swift): a hand-computed value and a finite-difference
// gradient check (it is composed of primitive ops, so its backward is theirs).
import GKNetModel
import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct CompositeRelativeLossTests {
    /// Two 1-pixel-wide images of 2 pixels, 1 channel: image 0 has a composite error, image 1 none.
    @Test func handComputedValue() {
        let target = Tensor(shape: [2, 1, 1, 2], data: [0.5, 0.5, 0.2, 0.2])
        let composite = Tensor(shape: [2, 1, 1, 2], data: [0.7, 0.5, 0.2, 0.2])
        let output = Tensor(shape: [2, 1, 1, 2], data: [0.6, 0.5, 0.3, 0.2])
        let mask = Tensor(shape: [2, 1, 1, 2], data: [1, 1, 1, 1])
        let floor: Float = 0.001
        let loss = compositeRelativeMSE(
            output: output, composite: composite, target: target, mask: mask, minimumArea: 1, floor: floor)
        // fMSE per image (1 channel x area 2): output 0.01/2, 0.01/2; composite 0.04/2, 0.
        let expected = ((0.01 / 2) / (0.04 / 2 + floor) + (0.01 / 2) / (0 + floor)) / 2
        #expect(abs(loss.item - expected) <= 1e-5 * expected, "\(loss.item) vs \(expected)")
        // The plain foreground MSE weighs the two images alike; this loss weighs the untouched one 21x.
        let plain = foregroundNormalizedMSE(output: output, target: target, mask: mask, minimumArea: 1)
        #expect(abs(plain.item - 0.005) <= 1e-7)
    }

    @Test func gradientsMatchFiniteDifferences() {
        var generator = SplitMix64(seed: 3)
        let target = Tensor.uniform([2, 3, 4, 4], low: 0, high: 1, generator: &generator)
        let composite = Tensor.uniform([2, 3, 4, 4], low: 0, high: 1, generator: &generator)
        let mask = Tensor.uniform([2, 1, 4, 4], low: 0, high: 1, generator: &generator)
        let output = Tensor.uniform([2, 3, 4, 4], low: 0, high: 1, generator: &generator)
        let report = checkGradients(
            of: { inputs in
                compositeRelativeMSE(
                    output: inputs[0], composite: composite, target: target, mask: mask, minimumArea: 1, floor: 0.01)
            }, at: [output], epsilon: 1e-3)
        #expect(report.passed, "\(report)")
    }
}
