import GKNetTensorCore
import GKNetTestSupport
// The test helpers must be able to fail: `checkGradients` on deliberately wrong gradients and
// `compare` on wrong values (their returned reports, not real test failures).
import Testing

/// `x * x * factor` whose pullback is `gradient(x, dOut)`, to plant a wrong backward.
private func square(_ x: Tensor, factor: Float = 1, gradient: @escaping (Float, Float) -> Float) -> Tensor {
    let output = Tensor(shape: x.shape, data: x.data.map { factor * $0 * $0 })
    let values = x.data
    return output.recorded("square (test)", inputs: [x]) { dOut in [zip(values, dOut).map { gradient($0, $1) }] }
}

@Suite struct CheckerTests {
    static func input(_ count: Int = 12, seed: UInt64 = 3) -> Tensor {
        var generator = SplitMix64(seed: seed)
        return Tensor.uniform([count], low: 0.2, high: 1, generator: &generator)
    }

    @Test func correctGradientPasses() {
        let report = checkGradients(of: { square($0[0]) { x, d in 2 * x * d } }, at: [Self.input()])
        #expect(report.passed, "\(report)")
    }

    @Test func signFlipFails() {
        let report = checkGradients(of: { square($0[0]) { x, d in -2 * x * d } }, at: [Self.input()])
        #expect(!report.passed)
        #expect(report.failures.count == 12, "every coordinate is wrong: \(report)")
    }

    @Test func fivePercentTooLargeFails() {
        let report = checkGradients(of: { square($0[0]) { x, d in 2.1 * x * d } }, at: [Self.input()])
        #expect(!report.passed, "\(report)")
    }

    /// Gradients far below 1 (an op scaled by 1e-3): with the old denominator max(1, |a|, |n|) a
    /// gradient off by 2x had an error of ~1e-3 and passed; scaled by the input's own gradients it fails.
    @Test func wrongSmallGradientFails() {
        let correct = checkGradients(of: { square($0[0], factor: 1e-3) { x, d in 2e-3 * x * d } }, at: [Self.input()])
        #expect(correct.passed, "\(correct)")
        let doubled = checkGradients(of: { square($0[0], factor: 1e-3) { x, d in 4e-3 * x * d } }, at: [Self.input()])
        #expect(!doubled.passed, "\(doubled)")
    }

    /// One wrong coordinate among many (sampled inputs are larger than `allCoordinatesUpTo`).
    @Test func oneWrongCoordinateOfASmallInputFails() {
        let x = Self.input(200)
        let report = checkGradients(of: { square($0[0]) { x, d in 2 * x * d } }, at: [x])
        #expect(report.passed, "\(report)")
        // The wrong element is found because inputs up to 256 elements are checked everywhere.
        let wrongAt = x.data[137]
        let broken = checkGradients(of: { square($0[0]) { v, d in v == wrongAt ? 0 : 2 * v * d } }, at: [x])
        #expect(!broken.passed && broken.failures.count == 1, "\(broken)")
    }

    @Test func zeroGradientFails() {
        let report = checkGradients(of: { square($0[0]) { _, _ in 0 } }, at: [Self.input()])
        #expect(!report.passed, "\(report)")
    }

    // MARK: compare

    @Test func compareFailsOnAWrongValue() {
        let expected: [Float] = [1, -2, 0.5, 1e-3, 100]
        #expect(compare(expected, expected).passed)
        var wrong = expected
        wrong[3] = 1.1e-3  // 1e-4 off: above 1e-6 + 1e-5 * 1e-3
        let result = compare(wrong, expected, relativeTolerance: 1e-5, absoluteTolerance: 1e-6)
        #expect(!result.passed)
        #expect(result.firstMismatches.map(\.index) == [3])
        var large = expected
        large[4] = 100.01  // 1e-4 relative
        #expect(!compare(large, expected, relativeTolerance: 1e-5, absoluteTolerance: 1e-6).passed)
    }

    @Test func compareFailsOnNaNAndLengthAndShape() {
        #expect(!compare([1, .nan], [1, 2]).passed)
        #expect(!compare([1, .nan], [1, .nan]).passed)
        #expect(!compare([1, 2], [1, 2, 3]).passed)
        #expect(
            !compare(
                Tensor(shape: [2, 3], data: [Float](repeating: 0, count: 6)),
                Tensor(shape: [3, 2], data: [Float](repeating: 0, count: 6))
            ).passed)
    }

    /// A transposed result (same values, wrong layout) fails: the comparison is element-wise.
    @Test func compareFailsOnATransposedResult() {
        let values = (0..<6).map(Float.init)
        let transposed: [Float] = [0, 3, 1, 4, 2, 5]
        #expect(!compare(transposed, values).passed)
    }
}
