import GKNetTensorCore
import GKNetTestSupport
import Testing

/// layerNorm and batchNorm (training and evaluation, running statistics): hand cases, finite
/// differences over odd shapes, PyTorch parity including the updated running statistics.
@Suite struct NormalizationTests {
    // MARK: (A) hand-computed cases

    @Test func layerNormOfOneRow() {
        let x = Tensor(shape: [1, 4], data: [1, 2, 3, 4], requiresGrad: true)
        let y = layerNorm(x, normalizedShape: [4], weight: nil, bias: nil)
        // mean 2.5, biased variance 1.25
        let scale = 1 / (1.25 + 1e-5 as Float).squareRoot()
        #expect(compare(y.data, [-1.5, -0.5, 0.5, 1.5].map { $0 * scale }, relativeTolerance: 1e-6).passed)
        // sum of a normalised row does not depend on x: the gradient of sum(y) is 0
        y.sum().backward()
        #expect(x.grad!.allSatisfy { Swift.abs($0) < 1e-6 })

        let w = Tensor(shape: [4], data: [1, 2, 3, 4], requiresGrad: true)
        let b = Tensor(shape: [4], data: [0, 0, 0, 10], requiresGrad: true)
        let z = layerNorm(x.detached(), normalizedShape: [4], weight: w, bias: b)
        // out = xhat * w + b
        #expect(
            compare(z.data, [-1.5 * scale, -1 * scale, 1.5 * scale, 6 * scale + 10], relativeTolerance: 1e-6).passed)
        z.sum().backward()
        #expect(b.grad == [1, 1, 1, 1])
        #expect(compare(w.grad!, [-1.5, -0.5, 0.5, 1.5].map { $0 * scale }, relativeTolerance: 1e-6).passed)
    }

    @Test func batchNormTrainingUpdatesRunningStatistics() {
        // N x C = 2 x 1: values 1 and 3, mean 2, biased variance 1, unbiased 2
        let x = Tensor(shape: [2, 1], data: [1, 3], requiresGrad: true)
        let runningMean = Tensor(shape: [1], data: [0])
        let runningVariance = Tensor(shape: [1], data: [1])
        let y = batchNorm(
            x, weight: nil, bias: nil, runningMean: runningMean, runningVariance: runningVariance, training: true)
        let scale = 1 / (1 + 1e-5 as Float).squareRoot()
        #expect(compare(y.data, [-scale, scale], relativeTolerance: 1e-6).passed)
        #expect(Swift.abs(runningMean.item - 0.2) < 1e-7)
        #expect(Swift.abs(runningVariance.item - 1.1) < 1e-6)  // 0.9 * 1 + 0.1 * 2

        let eval = batchNorm(
            Tensor(shape: [1, 1, 1, 2], data: [0.2, 1.2]), weight: Tensor(shape: [1], data: [2]),
            bias: Tensor(shape: [1], data: [1]),
            runningMean: runningMean, runningVariance: runningVariance, training: false)
        let evalScale = 2 / (1.1 + 1e-5 as Float).squareRoot()
        #expect(compare(eval.data, [1, 1 + evalScale], relativeTolerance: 1e-6).passed)
        #expect(Swift.abs(runningMean.item - 0.2) < 1e-7, "evaluation leaves the running statistics alone")
    }

    /// Many rows (several threads and gradient blocks): rows and summed weight gradients equal
    /// the row-by-row results.
    @Test func largeLayerNormMatchesRowByRow() {
        var generator = SplitMix64(seed: 13)
        let x = Tensor.normal([300, 256], std: 2, generator: &generator)
        let w = Tensor.normal([256], generator: &generator)
        let b = Tensor.normal([256], generator: &generator)
        for t in [x, w, b] { t.requiresGrad = true }
        let seed = Tensor.normal([300, 256], generator: &generator)
        let y = layerNorm(x, normalizedShape: [256], weight: w, bias: b)
        (y * seed).sum().backward()
        var dWeight = [Double](repeating: 0, count: 256)
        for r in 0..<300 {
            let row = x.detached().sliced(axis: 0, range: r..<(r + 1))
            row.requiresGrad = true
            let rw = w.detached()
            rw.requiresGrad = true
            let rowY = layerNorm(row, normalizedShape: [256], weight: rw, bias: b.detached())
            (rowY * seed.sliced(axis: 0, range: r..<(r + 1))).sum().backward()
            for j in 0..<256 { dWeight[j] += Double(rw.grad![j]) }
            if r % 97 == 0 {
                #expect(rowY.data == Array(y.data[(r * 256)..<((r + 1) * 256)]), "row \(r)")
                #expect(row.grad! == Array(x.grad![(r * 256)..<((r + 1) * 256)]), "row \(r) gradient")
            }
        }
        let c = compare(
            w.grad!, dWeight.map { Float($0) }, relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "dWeight")
        #expect(c.passed, "\(c)")
    }

    // MARK: (B) finite differences

    @Test func layerNormGradientsMatchFiniteDifferences() {
        for (index, (shape, normalized)) in [([3, 7], [7]), ([2, 3, 5], [3, 5]), ([5, 1], [1]), ([1, 2, 9], [9])]
            .enumerated()
        {
            var generator = SplitMix64(seed: UInt64(500 + index))
            let x = Tensor.normal(shape, std: 2, generator: &generator)
            let w = Tensor.normal(normalized, generator: &generator)
            let b = Tensor.normal(normalized, generator: &generator)
            let report = checkGradients(
                of: { layerNorm($0[0], normalizedShape: normalized, weight: $0[1], bias: $0[2]) }, at: [x, w, b])
            #expect(report.passed, "layerNorm \(shape) over \(normalized): \(report)")
            let plain = checkGradients(
                of: { layerNorm($0[0], normalizedShape: normalized, weight: nil, bias: nil) }, at: [x])
            #expect(plain.passed, "layerNorm without affine \(shape): \(plain)")
        }
    }

    @Test(arguments: [true, false])
    func batchNormGradientsMatchFiniteDifferences(training: Bool) {
        for (index, shape) in [[3, 2, 3, 5], [5, 3], [2, 3, 7]].enumerated() {
            var generator = SplitMix64(seed: UInt64(600 + index))
            let channels = shape[1]
            let x = Tensor.normal(shape, std: 2, generator: &generator)
            let w = Tensor.normal([channels], generator: &generator)
            let b = Tensor.normal([channels], generator: &generator)
            let runningMean = Tensor.normal([channels], generator: &generator)
            let runningVariance = Tensor.uniform([channels], low: 0.5, high: 2, generator: &generator)
            let report = checkGradients(
                of: {
                    batchNorm(
                        $0[0], weight: $0[1], bias: $0[2], runningMean: runningMean, runningVariance: runningVariance,
                        training: training)
                },
                at: [x, w, b])
            #expect(report.passed, "batchNorm training \(training) \(shape): \(report)")
        }
    }

    // MARK: (C) PyTorch parity

    @Test func layerNormMatchesPyTorch() throws {
        try expectParity(file: "normalization", case: "layer_norm_last", inputs: ["x", "weight", "bias"]) {
            layerNorm($0[0], normalizedShape: [7], weight: $0[1], bias: $0[2])
        }
        try expectParity(file: "normalization", case: "layer_norm_2d", inputs: ["x", "weight", "bias"]) {
            layerNorm($0[0], normalizedShape: [4, 6], weight: $0[1], bias: $0[2])
        }
        try expectParity(file: "normalization", case: "layer_norm_plain") {
            layerNorm($0[0], normalizedShape: [9], weight: nil, bias: nil)
        }
    }

    @Test(arguments: [
        ("batch_norm_train", true, Float(0.1)), ("batch_norm_train_nc", true, 0.3), ("batch_norm_eval", false, 0.1),
    ])
    func batchNormMatchesPyTorch(name: String, training: Bool, momentum: Float) throws {
        let fixture = try Fixtures.load("ops_core/normalization.safetensors")
        let runningMean = try fixture.tensor("\(name).running_mean")
        let runningVariance = try fixture.tensor("\(name).running_var")
        try expectParity(file: "normalization", case: name, inputs: ["x", "weight", "bias"]) {
            batchNorm(
                $0[0], weight: $0[1], bias: $0[2], runningMean: runningMean, runningVariance: runningVariance,
                training: training, momentum: momentum)
        }
        let mean = compare(runningMean, try fixture.tensor("\(name).running_mean_after"), label: "\(name) running mean")
        #expect(mean.passed, "\(mean)")
        let variance = compare(
            runningVariance, try fixture.tensor("\(name).running_var_after"), label: "\(name) running variance")
        #expect(variance.passed, "\(variance)")
    }
}
