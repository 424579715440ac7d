// Comparing tensors in tests: whole-tensor checks with a readable report (llm.c check_tensor).
import TensorCore

/// The result of comparing two buffers elementwise.
public struct Comparison: CustomStringConvertible {
    public var passed: Bool
    public var maxAbsoluteDifference: Float
    public var maxRelativeDifference: Float
    public var firstMismatches: [(index: Int, actual: Float, expected: Float)]
    public var label: String

    public var description: String {
        let head = "\(label): max |diff| \(maxAbsoluteDifference), max rel \(maxRelativeDifference)"
        if passed { return head + " OK" }
        let mismatches = firstMismatches.map { "[\($0.index)] got \($0.actual) want \($0.expected)" }.joined(
            separator: "; ")
        return head + " NOT OK; first mismatches: " + mismatches
    }
}

/// Compares `actual` with `expected`: element i passes when
/// |a - e| <= absoluteTolerance + relativeTolerance * |e|. NaN never passes.
public func compare(
    _ actual: [Float], _ expected: [Float], relativeTolerance: Float = 1e-5, absoluteTolerance: Float = 1e-6,
    label: String = "tensor"
) -> Comparison {
    guard actual.count == expected.count else {
        return Comparison(
            passed: false, maxAbsoluteDifference: .infinity, maxRelativeDifference: .infinity, firstMismatches: [],
            label: "\(label): count \(actual.count) vs expected \(expected.count)")
    }
    var maxAbs: Float = 0
    var maxRel: Float = 0
    var mismatches: [(Int, Float, Float)] = []
    var passed = true
    for i in 0..<actual.count {
        let difference = abs(actual[i] - expected[i])
        let ok = difference <= absoluteTolerance + relativeTolerance * abs(expected[i])
        if !(difference <= maxAbs) { maxAbs = difference.isNaN ? .nan : max(maxAbs, difference) }
        if expected[i] != 0 { maxRel = max(maxRel, difference / abs(expected[i])) }
        if !ok || difference.isNaN {
            passed = false
            if mismatches.count < 5 { mismatches.append((i, actual[i], expected[i])) }
        }
    }
    return Comparison(
        passed: passed, maxAbsoluteDifference: maxAbs, maxRelativeDifference: maxRel, firstMismatches: mismatches,
        label: label)
}

/// Compares two tensors, shape first.
public func compare(
    _ actual: Tensor, _ expected: Tensor, relativeTolerance: Float = 1e-5, absoluteTolerance: Float = 1e-6,
    label: String = "tensor"
) -> Comparison {
    guard actual.shape == expected.shape else {
        return Comparison(
            passed: false, maxAbsoluteDifference: .infinity, maxRelativeDifference: .infinity, firstMismatches: [],
            label: "\(label): shape \(actual.shape) vs expected \(expected.shape)")
    }
    return compare(
        actual.data, expected.data, relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance,
        label: label)
}

/// Compares `actual` with a reference run in another implementation: element i passes when
/// |a - e| <= tolerance * (scale + |e|), with scale = max |e| over the whole reference. A bound on
/// every element, relative to the tensor's magnitude (near-zero entries are not held to a relative
/// bound that float32 rounding of their large neighbours' sums cannot meet); counts must match.
public func compareToScale(_ actual: [Float], _ expected: [Float], tolerance: Float, label: String = "tensor")
    -> Comparison
{
    let scale = expected.reduce(Float(0)) { max($0, abs($1)) }
    return compare(actual, expected, relativeTolerance: tolerance, absoluteTolerance: tolerance * scale, label: label)
}

/// `compareToScale` for tensors, shape first.
public func compareToScale(_ actual: Tensor, _ expected: Tensor, tolerance: Float, label: String = "tensor")
    -> Comparison
{
    guard actual.shape == expected.shape else {
        return Comparison(
            passed: false, maxAbsoluteDifference: .infinity, maxRelativeDifference: .infinity, firstMismatches: [],
            label: "\(label): shape \(actual.shape) vs expected \(expected.shape)")
    }
    return compareToScale(actual.data, expected.data, tolerance: tolerance, label: label)
}
