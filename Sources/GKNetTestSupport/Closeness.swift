// Comparing tensors in tests: whole-tensor checks with a readable report (llm.c check_tensor).
import Foundation
import GKNetTensorCore

#if canImport(Testing)
import Testing
#endif

/// The result of comparing two buffers elementwise.
public struct Comparison: CustomStringConvertible {
    public var passed: Bool
    public var maxAbsoluteDifference: Float
    public var maxRelativeDifference: Float
    public var firstMismatches: [(index: Int, actual: Float, expected: Float)]
    public var label: String
    /// The largest |a - e| / bound over the elements: 1 is exactly at the tolerance, 0.25 means the
    /// tolerance could be 4x tighter. What `ParityReport` records to set tolerances from measurement.
    public var boundUsage: Float = 0

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
            label: "\(label): count \(actual.count) vs expected \(expected.count)", boundUsage: .infinity)
    }
    var maxAbs: Float = 0
    var maxRel: Float = 0
    var mismatches: [(Int, Float, Float)] = []
    var passed = true
    var usage: Float = 0
    for i in 0..<actual.count {
        let difference = abs(actual[i] - expected[i])
        let bound = absoluteTolerance + relativeTolerance * abs(expected[i])
        let ok = difference <= bound
        if difference > 0 || difference.isNaN {
            usage = max(usage, difference.isNaN ? .infinity : (bound > 0 ? difference / bound : .infinity))
        }
        if !(difference <= maxAbs) { maxAbs = difference.isNaN ? .nan : max(maxAbs, difference) }
        if expected[i] != 0 { maxRel = max(maxRel, difference / abs(expected[i])) }
        if !ok || difference.isNaN {
            passed = false
            if mismatches.count < 5 { mismatches.append((i, actual[i], expected[i])) }
        }
    }
    let comparison = Comparison(
        passed: passed, maxAbsoluteDifference: maxAbs, maxRelativeDifference: maxRel, firstMismatches: mismatches,
        label: label, boundUsage: usage)
    ParityReport.record(comparison)
    return comparison
}

/// Compares two tensors, shape first.
public func compare(
    _ actual: Tensor, _ expected: Tensor, relativeTolerance: Float = 1e-5, absoluteTolerance: Float = 1e-6,
    label: String = "tensor"
) -> Comparison {
    guard actual.shape == expected.shape else {
        return Comparison(
            passed: false, maxAbsoluteDifference: .infinity, maxRelativeDifference: .infinity, firstMismatches: [],
            label: "\(label): shape \(actual.shape) vs expected \(expected.shape)", boundUsage: .infinity)
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
            label: "\(label): shape \(actual.shape) vs expected \(expected.shape)", boundUsage: .infinity)
    }
    return compareToScale(actual.data, expected.data, tolerance: tolerance, label: label)
}

/// One number against a bound computed by the caller (|actual - expected| <= bound), recorded like
/// every other comparison. For whole-tensor statistics (a gradient's max, norm, projection).
public func compare(_ actual: Double, _ expected: Double, bound: Double, label: String) -> Comparison {
    let difference = abs(actual - expected)
    let passed = difference <= bound
    let usage = difference == 0 ? 0 : (bound > 0 && !difference.isNaN ? difference / bound : .infinity)
    let comparison = Comparison(
        passed: passed, maxAbsoluteDifference: Float(difference),
        maxRelativeDifference: expected != 0 ? Float(difference / abs(expected)) : 0,
        firstMismatches: passed ? [] : [(0, Float(actual), Float(expected))], label: label, boundUsage: Float(usage))
    ParityReport.record(comparison)
    return comparison
}

/// With `GKNET_PARITY_REPORT=<file>`, every comparison appends one line
/// `test<TAB>label<TAB>boundUsage<TAB>passed`
/// to that file (one `write` per line on an O_APPEND descriptor, so parallel tests do not interleave).
/// `Scripts/parity_spread.sh` runs the parity suites under each instruction-set setting with it and
/// `Scripts/parity_spread.py` turns the lines into the measured-spread table of docs/robustness.md.
public enum ParityReport {
    private static let descriptor: Int32? = {
        guard let path = ProcessInfo.processInfo.environment["GKNET_PARITY_REPORT"], !path.isEmpty else {
            return nil
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        return fd >= 0 ? fd : nil
    }()

    private static var currentTestName: String {
        #if canImport(Testing)
        if let test = Test.current { return test.id.description }
        #endif
        return "-"
    }

    public static func record(_ comparison: Comparison) {
        guard let descriptor else { return }
        let label = comparison.label.replacingOccurrences(of: "\t", with: " ")
            .replacingOccurrences(of: "\n", with: " ")
        let line = "\(currentTestName)\t\(label)\t\(comparison.boundUsage)\t\(comparison.passed ? 1 : 0)\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
    }
}
