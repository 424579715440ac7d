import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// softmax and logSoftmax over an axis: hand cases, stability, the tiled (inner axis) path against
/// a naive loop, finite differences, PyTorch parity.
@Suite struct SoftmaxTests {
    // MARK: (A) hand-computed cases

    @Test func smallRow() {
        let x = Tensor(shape: [1, 3], data: [1, 2, 3], requiresGrad: true)
        let s = x.softmax(axis: 1)
        let expected: [Float] = [0.090_030_57, 0.244_728_47, 0.665_240_96]
        #expect(compare(s.data, expected, relativeTolerance: 1e-6).passed)
        let l = x.logSoftmax(axis: -1)
        #expect(compare(l.data, [-2.407_606, -1.407_606, -0.407_606], relativeTolerance: 1e-6).passed)
        // d/dx of s[2]: s2 (δ_i2 - s_i)
        (s * Tensor(shape: [1, 3], data: [0, 0, 1])).sum().backward()
        let s2 = expected[2]
        let gradient = compare(x.grad!, [-s2 * expected[0], -s2 * expected[1], s2 * (1 - s2)], relativeTolerance: 1e-5)
        #expect(gradient.passed, "\(gradient)")
    }

    @Test func columnsAlongFirstAxisSumToOne() {
        let x = Tensor(shape: [2, 2], data: [0, 0, Float(M_LN2), 0])
        let s = x.softmax(axis: 0)
        #expect(compare(s.data, [1.0 / 3, 0.5, 2.0 / 3, 0.5], relativeTolerance: 1e-6).passed)
    }

    @Test func largeLogitsStayFinite() {
        let x = Tensor(shape: [2, 2], data: [1000, 1000, -1000, 0])
        #expect(x.softmax(axis: 1).data == [0.5, 0.5, 0, 1])
        #expect(x.logSoftmax(axis: 1).data == [-Float(M_LN2), -Float(M_LN2), -1000, 0])
    }

    // MARK: the tiled path (softmax axis not last) against a naive loop

    @Test func innerAxisMatchesNaiveLoop() {
        var generator = SplitMix64(seed: 9)
        let shape = [3, 5, 130]  // two full tiles of 64 and a partial one
        let x = Tensor.normal(shape, std: 3, generator: &generator)
        var expectedSoftmax = [Float](repeating: 0, count: x.count)
        var expectedLog = expectedSoftmax
        for o in 0..<3 {
            for c in 0..<130 {
                let column = (0..<5).map { Double(x.data[(o * 5 + $0) * 130 + c]) }
                let logSum = Foundation.log(column.map { Foundation.exp($0) }.reduce(0, +))
                for j in 0..<5 {
                    expectedSoftmax[(o * 5 + j) * 130 + c] = Float(Foundation.exp(column[j] - logSum))
                    expectedLog[(o * 5 + j) * 130 + c] = Float(column[j] - logSum)
                }
            }
        }
        let s = compare(x.softmax(axis: 1).data, expectedSoftmax, relativeTolerance: 1e-5, label: "softmax")
        #expect(s.passed, "\(s)")
        let l = compare(
            x.logSoftmax(axis: 1).data, expectedLog, relativeTolerance: 1e-5, absoluteTolerance: 1e-5,
            label: "logSoftmax")
        #expect(l.passed, "\(l)")
    }

    /// Many rows (several threads): each row equals the softmax of that row alone.
    @Test func largeTensorsMatchRowByRow() {
        var generator = SplitMix64(seed: 10)
        for (shape, axis) in [([600, 257], 1), ([4, 9, 3000], 1)] {
            let x = Tensor.normal(shape, std: 2, generator: &generator)
            x.requiresGrad = true
            let y = x.softmax(axis: axis)
            let seed = Tensor.normal(shape, generator: &generator)
            (y * seed).sum().backward()
            for i in [0, shape[0] / 2, shape[0] - 1] {
                let row = x.detached().sliced(axis: 0, range: i..<(i + 1))
                row.requiresGrad = true
                let rowY = row.softmax(axis: axis)
                #expect(rowY.data == y.sliced(axis: 0, range: i..<(i + 1)).data, "\(shape) slice \(i)")
                (rowY * seed.sliced(axis: 0, range: i..<(i + 1))).sum().backward()
                let stride = x.count / shape[0]
                #expect(row.grad! == Array(x.grad![(i * stride)..<((i + 1) * stride)]), "\(shape) slice \(i) gradient")
            }
        }
    }

    // MARK: (B) finite differences

    @Test(arguments: [false, true])
    func gradientsMatchFiniteDifferences(logarithm: Bool) {
        let cases: [([Int], Int)] = [
            ([7], 0), ([3, 5], 1), ([3, 5, 7], 0), ([3, 5, 7], 1), ([2, 70], 0), ([1, 4, 1], -2),
        ]
        for (index, (shape, axis)) in cases.enumerated() {
            var generator = SplitMix64(seed: UInt64(400 + index))
            let x = Tensor.uniform(shape, low: -3, high: 3, generator: &generator)
            let report = checkGradients(
                of: { logarithm ? $0[0].logSoftmax(axis: axis) : $0[0].softmax(axis: axis) }, at: [x])
            #expect(report.passed, "\(logarithm ? "logSoftmax" : "softmax") \(shape) axis \(axis): \(report)")
        }
    }

    // MARK: (C) PyTorch parity

    static let parityCases: [String: @Sendable (Tensor) -> Tensor] = [
        "softmax_last": { $0.softmax(axis: -1) }, "log_softmax_last": { $0.logSoftmax(axis: -1) },
        "softmax_1": { $0.softmax(axis: 1) }, "log_softmax_1": { $0.logSoftmax(axis: 1) },
        "softmax_0": { $0.softmax(axis: 0) }, "log_softmax_0": { $0.logSoftmax(axis: 0) },
        "softmax_large": { $0.softmax(axis: -1) }, "log_softmax_large": { $0.logSoftmax(axis: -1) },
        "softmax_wide_inner": { $0.softmax(axis: 1) },
    ]

    @Test(arguments: parityCases.keys.sorted())
    func matchesPyTorch(_ name: String) throws {
        let op = Self.parityCases[name]!
        try expectParity(file: "softmax", case: name) { op($0[0]) }
    }
}
