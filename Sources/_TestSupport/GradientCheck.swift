// Finite-difference gradient checks (ggml test-backend-ops style): loss = sum(f(x) * R) with a
// fixed random R, central differences in Double, at most `maximumCoordinates` sampled per input.
import TensorCore

public struct GradientCheckReport: CustomStringConvertible {
    public var passed: Bool
    public var worstError: Double
    public var failures: [String]
    public var description: String {
        passed ? "gradient check OK (worst error \(worstError))" : "gradient check FAILED (worst error \(worstError)): " + failures.prefix(5).joined(separator: "; ")
    }
}

/// Checks the analytic input gradients of `function` against central differences.
///
/// - Parameters:
///   - inputs: tensors (their `requiresGrad` is set); their values are perturbed in place and restored.
///   - epsilon: the finite-difference step.
///   - tolerance: error = |analytic - numeric| / max(1, |analytic|, |numeric|) must stay below this.
///   - function: the op under test; must be deterministic.
public func checkGradients(
    of function: ([Tensor]) -> Tensor, at inputs: [Tensor], epsilon: Float = 1e-2, tolerance: Double = 1e-2,
    maximumCoordinates: Int = 64, seed: UInt64 = 7
) -> GradientCheckReport {
    for input in inputs { input.requiresGrad = true; input.grad = nil }
    var generator = SplitMix64(seed: seed)
    let probe = function(inputs)
    let weights = Tensor.uniform(probe.shape, low: -1, high: 1, generator: &generator)
    func objective() -> Double {
        let output = withoutGradient { function(inputs) }
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
        if coordinates.count > maximumCoordinates {
            coordinates.shuffle(using: &generator)
            coordinates = Array(coordinates.prefix(maximumCoordinates))
        }
        for index in coordinates {
            let original = input.data[index]
            input.data[index] = original + epsilon
            let plus = objective()
            input.data[index] = original - epsilon
            let minus = objective()
            input.data[index] = original
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let value = Double(analytic[index])
            let error = abs(value - numeric) / max(1, abs(value), abs(numeric))
            worst = max(worst, error)
            if !(error < tolerance) {
                failures.append("input \(inputIndex) \(input.shape) [\(index)]: analytic \(value), numeric \(numeric)")
            }
        }
    }
    return GradientCheckReport(passed: failures.isEmpty, worstError: worst, failures: failures)
}
