// Finite-difference gradient checks (ggml test-backend-ops style): loss = sum(f(x) * R) with a
// fixed random R, central differences in Double, at most `maximumCoordinates` sampled per input.
import GKNetTensorCore

public struct GradientCheckReport: CustomStringConvertible {
    public var passed: Bool
    public var worstError: Double
    public var failures: [String]
    public var description: String {
        passed
            ? "gradient check OK (worst error \(worstError))"
            : "gradient check FAILED at \(failures.count) coordinates (worst error \(worstError)): "
                + failures.prefix(5).joined(separator: "; ")
    }
}

/// Checks the analytic input gradients of `function` against central differences.
///
/// Error at a coordinate: |analytic - numeric| / max(|analytic|, |numeric|, scale), where `scale`
/// is the input's own gradient magnitude (the largest |analytic| over the whole input and |numeric|
/// over the checked coordinates), not 1: a gradient that is wrong by 2x fails even when every
/// gradient of the op is far below 1, and a coordinate whose gradient is tiny beside its
/// neighbours' is not held to a relative bound that finite differences cannot meet.
///
/// - Parameters:
///   - inputs: tensors (their `requiresGrad` is set); their values are perturbed in place and restored.
///   - epsilon: the finite-difference step.
///   - tolerance: the largest error allowed.
///   - maximumCoordinates: inputs of at most `allCoordinatesUpTo` elements are checked at every
///     coordinate; larger ones at this many sampled coordinates.
///   - function: the op under test; must be deterministic.
public func checkGradients(
    of function: ([Tensor]) -> Tensor, at inputs: [Tensor], epsilon: Float = 1e-2, tolerance: Double = 1e-2,
    maximumCoordinates: Int = 64, allCoordinatesUpTo: Int = 256, seed: UInt64 = 7
) -> GradientCheckReport {
    for input in inputs {
        input.requiresGrad = true
        input.grad = nil
    }
    var generator = SplitMix64(seed: seed)
    let probe = function(inputs)
    let weights = Tensor.uniform(probe.shape, low: -1, high: 1, generator: &generator)
    func objective() -> Double {
        let output = withoutGradient { function(inputs) }
        precondition(output.count == weights.count, "checkGradients: the function's output changed size")
        var total = 0.0
        for i in 0..<output.count { total += Double(output.data[i]) * Double(weights.data[i]) }
        return total
    }
    let loss = (probe * weights).sum()
    loss.backward()

    var worst = 0.0
    var failures: [String] = []
    for (inputIndex, input) in inputs.enumerated() {
        let analytic = input.grad ?? [Float](repeating: 0, count: input.count)
        var coordinates = Array(0..<input.count)
        if coordinates.count > max(maximumCoordinates, allCoordinatesUpTo) {
            coordinates.shuffle(using: &generator)
            coordinates = Array(coordinates.prefix(maximumCoordinates))
        }
        var numeric: [Double] = []
        for index in coordinates {
            let original = input.data[index]
            input.data[index] = original + epsilon
            let plus = objective()
            input.data[index] = original - epsilon
            let minus = objective()
            input.data[index] = original
            numeric.append((plus - minus) / (2 * Double(epsilon)))
        }
        let largestAnalytic = analytic.reduce(0.0) { max($0, abs(Double($1))) }
        let scale = max(largestAnalytic, numeric.reduce(0.0) { max($0, abs($1)) }, Double.leastNormalMagnitude)
        for (index, numericValue) in zip(coordinates, numeric) {
            let value = Double(analytic[index])
            let error = abs(value - numericValue) / max(abs(value), abs(numericValue), scale)
            worst = max(worst, error)
            if !(error < tolerance) {
                failures.append(
                    "input \(inputIndex) \(input.shape) [\(index)]: analytic \(value), numeric \(numericValue) (scale "
                        + "\(scale))"
                )
            }
        }
    }
    return GradientCheckReport(passed: failures.isEmpty, worstError: worst, failures: failures)
}
