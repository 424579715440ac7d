import GKNetTensorCore
import GKNetTestSupport
import Testing

/// sum / mean / max over axes and the composed variance: hand cases, naive-loop twins on every
/// axis subset of an unfriendly shape, finite differences, PyTorch parity.
@Suite struct ReductionTests {
    // MARK: (A) hand-computed cases

    @Test func sumsAndMeansOfSmallMatrix() {
        let x = Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5], requiresGrad: true)
        #expect(x.sum().shape == [] && x.sum().item == 15)
        #expect(x.sum(axes: [0]).data == [3, 5, 7])
        #expect(x.sum(axes: [1]).data == [3, 12])
        #expect(x.sum(axes: [-1], keepingDimensions: true).shape == [2, 1])
        #expect(x.sum(axes: [0, 1]).shape == [] && x.sum(axes: [1, 0]).item == 15)
        #expect(x.mean().item == 2.5)
        #expect(x.mean(axes: [0]).data == [1.5, 2.5, 3.5])
        #expect(x.mean(axes: [1], keepingDimensions: true).data == [1, 4])
        #expect(x.sum(axes: []).data == x.data && x.sum(axes: []).shape == [2, 3])

        let weights = Tensor(shape: [2], data: [1, 10])
        (x.mean(axes: [1]) * weights).sum().backward()
        // out[r] = mean_j x[r, j], so d x[r, j] = weights[r] / 3
        let gradient = compare(x.grad!, [1, 1, 1, 10, 10, 10].map { Float($0) / 3 }, relativeTolerance: 1e-6)
        #expect(gradient.passed, "\(gradient)")
    }

    @Test func maxSendsGradientToFirstMaximum() {
        let x = Tensor(shape: [2, 3], data: [1, 3, 3, 2, 0, 2], requiresGrad: true)
        let m = x.max(axes: [1])
        #expect(m.data == [3, 2])
        m.sum().backward()
        #expect(x.grad == [0, 1, 0, 1, 0, 0])
        let columns = Tensor(shape: [2, 3], data: [1, 3, 3, 2, 0, 2], requiresGrad: true)
        let c = columns.max(axes: [0], keepingDimensions: true)
        #expect(c.shape == [1, 3] && c.data == [2, 3, 3])
        c.sum().backward()
        #expect(columns.grad == [0, 1, 1, 1, 0, 0])
        #expect(Tensor(shape: [3], data: [-5, -2, -7]).max(axes: [0]).item == -2)
    }

    @Test func varianceIsBiasedUnlessAsked() {
        let x = Tensor(shape: [1, 4], data: [1, 2, 3, 4])
        #expect(x.variance(axes: [1]).data == [1.25])
        let unbiased = x.variance(axes: [-1], keepingDimensions: true, unbiased: true)
        #expect(unbiased.shape == [1, 1] && Swift.abs(unbiased.item - 5.0 / 3) < 1e-6)
    }

    @Test func sumOfLargeTensorIsAccurate() {
        // 1e6 copies of 0.1: a plain Float accumulator drifts by ~1 %; the Double one does not.
        let x = Tensor(repeating: 0.1, shape: [1000, 1000])
        #expect(Swift.abs(x.sum().item - 100_000) < 0.01)
        #expect(Swift.abs(x.mean(axes: [0]).data[17] - 0.1) < 1e-7)
    }

    // MARK: kernels against naive loops, every axis subset of an unfriendly shape

    /// Naive sum and first-maximum index over `axes` (row-major walk of the input).
    static func naiveReduce(_ x: Tensor, axes: Set<Int>) -> (sum: [Double], max: [Float], argmax: [Int]) {
        let outShape = x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] }
        var sums = [Double](repeating: 0, count: outShape.elementCount)
        var maxima = [Float](repeating: -.infinity, count: sums.count)
        var argmax = [Int](repeating: -1, count: sums.count)
        // the output stride of each input axis (0 for reduced axes)
        var outputStrides = [Int](repeating: 0, count: x.rank)
        var running = 1
        for axis in stride(from: x.rank - 1, through: 0, by: -1) where !axes.contains(axis) {
            outputStrides[axis] = running
            running *= x.shape[axis]
        }
        for flat in 0..<x.count {
            var remainder = flat
            var o = 0
            for axis in stride(from: x.rank - 1, through: 0, by: -1) {
                o += (remainder % x.shape[axis]) * outputStrides[axis]
                remainder /= x.shape[axis]
            }
            sums[o] += Double(x.data[flat])
            if x.data[flat] > maxima[o] {
                maxima[o] = x.data[flat]
                argmax[o] = flat
            }
        }
        return (sums, maxima, argmax)
    }

    @Test func everyAxisSubsetMatchesNaiveLoops() {
        let shape = [3, 1, 5, 2, 7]
        var generator = SplitMix64(seed: 11)
        let x = Tensor.normal(shape, generator: &generator)
        for mask in 0..<(1 << shape.count) {
            let axes = shape.indices.filter { mask & (1 << $0) != 0 }
            let naive = Self.naiveReduce(x, axes: Set(axes))
            let s = compare(
                x.sum(axes: axes).data, naive.sum.map { Float($0) }, relativeTolerance: 1e-6, label: "sum \(axes)")
            #expect(s.passed, "\(s)")
            let input = x.detached()
            input.requiresGrad = true
            let m = input.max(axes: axes)
            #expect(m.data == naive.max, "max \(axes)")
            m.sum().backward()
            var expectedGrad = [Float](repeating: 0, count: x.count)
            for i in naive.argmax { expectedGrad[i] = 1 }
            #expect(input.grad == expectedGrad, "max gradient \(axes)")
        }
    }

    /// Large enough for several threads (each output's walk starts mid-tensor).
    @Test func largeReductionsMatchNaiveLoops() {
        var generator = SplitMix64(seed: 12)
        let x = Tensor.normal([64, 50, 33], generator: &generator)
        for axes in [[0], [1], [2], [0, 2], [1, 2]] {
            let naive = Self.naiveReduce(x, axes: Set(axes))
            let s = compare(
                x.mean(axes: axes).data, naive.sum.map { Float($0 / Double(axes.reduce(1) { $0 * x.shape[$1] })) },
                relativeTolerance: 1e-5, absoluteTolerance: 1e-7, label: "mean \(axes)")
            #expect(s.passed, "\(s)")
            #expect(x.max(axes: axes).data == naive.max, "max \(axes)")
        }
        // Backward over a kept inner run of 1650 (two tiles): d x[n, j] = seed[j] / 64.
        let input = x.detached()
        input.requiresGrad = true
        let seed = (0..<1650).map { Float($0 % 7) - 3 }
        input.mean(axes: [0]).backward(seed: seed)
        #expect(input.grad! == (0..<x.count).map { seed[$0 % 1650] * Float(1.0 / 64) })
        let maxInput = x.detached()
        maxInput.requiresGrad = true
        maxInput.max(axes: [0]).backward(seed: seed)
        var expected = [Float](repeating: 0, count: x.count)
        for (j, i) in Self.naiveReduce(x, axes: [0]).argmax.enumerated() { expected[i] = seed[j] }
        #expect(maxInput.grad! == expected)
    }

    // MARK: (B) finite differences

    static let cases: [(name: String, shape: [Int], op: @Sendable (Tensor) -> Tensor)] = [
        ("sum all", [3, 5], { $0.sum() }),
        ("sum 0,2", [3, 5, 7], { $0.sum(axes: [0, 2]) }),
        ("sum 1 keep", [3, 5, 7], { $0.sum(axes: [1], keepingDimensions: true) }),
        ("mean all", [2, 3, 5], { $0.mean() }),
        ("mean 1,3", [2, 3, 1, 5], { $0.mean(axes: [1, 3]) }),
        ("mean -1 keep", [7, 3], { $0.mean(axes: [-1], keepingDimensions: true) }),
        ("max 0", [5, 3], { $0.max(axes: [0]) }),
        ("max 1,2", [3, 5, 7], { $0.max(axes: [1, 2]) }),
        ("max 0,2 keep", [3, 5, 7], { $0.max(axes: [0, 2], keepingDimensions: true) }),
        ("variance 1", [3, 7], { $0.variance(axes: [1]) }),
        ("variance 0,2 unbiased", [3, 2, 5], { $0.variance(axes: [0, 2], keepingDimensions: true, unbiased: true) }),
    ]

    @Test func gradientsMatchFiniteDifferences() {
        for (index, testCase) in Self.cases.enumerated() {
            // Distinct values 0.1 apart, shuffled: no ties within 2 * epsilon for max.
            var generator = SplitMix64(seed: UInt64(200 + index))
            let values = (0..<testCase.shape.elementCount).map { Float($0) * 0.1 - 1 }.shuffled(using: &generator)
            let x = Tensor(shape: testCase.shape, data: values)
            let report = checkGradients(of: { testCase.op($0[0]) }, at: [x])
            #expect(report.passed, "\(testCase.name) \(testCase.shape): \(report)")
        }
    }

    // MARK: (C) PyTorch parity

    static let parityCases: [String: @Sendable (Tensor) -> Tensor] = [
        "sum_all": { $0.sum() },
        "sum_1": { $0.sum(axes: [1]) },
        "sum_0_2": { $0.sum(axes: [0, 2]) },
        "sum_1_3_keep": { $0.sum(axes: [1, 3], keepingDimensions: true) },
        "sum_last": { $0.sum(axes: [-1]) },
        "mean_all": { $0.mean() },
        "mean_2_3_keep": { $0.mean(axes: [2, 3], keepingDimensions: true) },
        "mean_0_2_3": { $0.mean(axes: [0, 2, 3]) },
        "max_1": { $0.max(axes: [1]) },
        "max_3_keep": { $0.max(axes: [3], keepingDimensions: true) },
        "max_0_2": { $0.max(axes: [0, 2]) },
        "max_1_2_3": { $0.max(axes: [1, 2, 3]) },
        "var_2_3": { $0.variance(axes: [2, 3]) },
        "var_0_keep_unbiased": { $0.variance(axes: [0], keepingDimensions: true, unbiased: true) },
    ]

    @Test(arguments: parityCases.keys.sorted())
    func matchesPyTorch(_ name: String) throws {
        let op = Self.parityCases[name]!
        try expectParity(file: "reduction", case: name) { op($0[0]) }
    }
}
