import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// batchNormELU (batch norm and ELU fused): (A) hand values, (B) finite differences, and equality
/// with the composition batchNorm(...).elu(), whose parts have PyTorch parity tests.
@Suite struct FusedNormalizationTests {
    @Test func evaluationModeByHand() {
        // running mean 1, variance 4 - eps: (x - 1) / 2, then ELU
        let x = Tensor(shape: [1, 1, 1, 3], data: [-1, 1, 5])
        let y = batchNormELU(
            x, weight: nil, bias: nil, runningMean: Tensor(shape: [1], data: [1]),
            runningVariance: Tensor(shape: [1], data: [4 - 1e-5]), training: false)
        let expected = Tensor(shape: [1, 1, 1, 3], data: [Float(Foundation.exp(-1.0) - 1), 0, 2])
        let c = compare(y, expected, relativeTolerance: 1e-6, absoluteTolerance: 1e-6, label: "eval")
        #expect(c.passed, "\(c)")
    }

    /// alpha = 1 keeps ELU's derivative continuous at 0, where central differences would straddle a kink.
    @Test(arguments: [true, false])
    func gradientsMatchFiniteDifferences(training: Bool) {
        var generator = SplitMix64(seed: 43)
        for shape in [[2, 3, 4, 5], [3, 2, 1, 1], [1, 4, 3, 7]] {
            let x = Tensor.uniform(shape, low: -2, high: 2, generator: &generator)
            let weight = Tensor.uniform([shape[1]], low: 0.5, high: 1.5, generator: &generator)
            let bias = Tensor.uniform([shape[1]], low: -0.5, high: 0.5, generator: &generator)
            let report = checkGradients(
                of: {
                    batchNormELU(
                        $0[0], weight: $0[1], bias: $0[2], runningMean: Tensor.zeros([shape[1]]),
                        runningVariance: Tensor.ones([shape[1]]), training: training)
                }, at: [x, weight, bias])
            #expect(report.passed, "\(shape) training \(training): \(report)")
        }
    }

    @Test(arguments: [true, false])
    func equalsTheComposition(training: Bool) {
        var generator = SplitMix64(seed: 47)
        for shape in [[2, 5, 9, 7], [8, 3, 33, 17], [1, 2, 1, 300]] {
            let c = shape[1]
            let x = Tensor.uniform(shape, low: -3, high: 3, generator: &generator)
            let weight = Tensor.uniform([c], low: 0.5, high: 1.5, generator: &generator)
            let bias = Tensor.uniform([c], low: -0.5, high: 0.5, generator: &generator)
            let dOut = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
            let statistics = (0..<2).map { _ in
                (
                    Tensor.uniform([c], low: -0.2, high: 0.2, generator: &generator),
                    Tensor.uniform([c], low: 0.5, high: 2, generator: &generator)
                )
            }
            let runs = [true, false].map { fused in
                let (xi, wi, bi) = (x.detached(), weight.detached(), bias.detached())
                for t in [xi, wi, bi] { t.requiresGrad = true }
                let (mean, variance) = (statistics[0].0.detached(), statistics[0].1.detached())
                let y =
                    fused
                    ? batchNormELU(
                        xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: training,
                        alpha: 0.8)
                    : batchNorm(
                        xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: training
                    ).elu(alpha: 0.8)
                y.backward(seed: dOut.data)
                return [y.data, xi.grad!, wi.grad!, bi.grad!, mean.data, variance.data]
            }
            for (index, label) in ["forward", "dx", "dweight", "dbias", "running mean", "running variance"].enumerated()
            {
                let comparison = compare(
                    Tensor(shape: [runs[0][index].count], data: runs[0][index]),
                    Tensor(shape: [runs[1][index].count], data: runs[1][index]),
                    relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "\(label) \(shape) training \(training)")
                #expect(comparison.passed, "\(comparison)")
            }
        }
    }
}

extension FusedNormalizationTests {
    @Test(arguments: [true, false])
    func residualEqualsTheComposition(training: Bool) {
        var generator = SplitMix64(seed: 61)
        let shape = [3, 4, 9, 5]
        let x = Tensor.uniform(shape, low: -3, high: 3, generator: &generator)
        let skip = Tensor.uniform(shape, low: -2, high: 2, generator: &generator)
        let weight = Tensor.uniform([4], low: 0.5, high: 1.5, generator: &generator)
        let bias = Tensor.uniform([4], low: -0.5, high: 0.5, generator: &generator)
        let dOut = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let runs = [true, false].map { fused in
            let (xi, si, wi, bi) = (x.detached(), skip.detached(), weight.detached(), bias.detached())
            for t in [xi, si, wi, bi] { t.requiresGrad = true }
            let (mean, variance) = (Tensor.zeros([4]), Tensor.ones([4]))
            let y =
                fused
                ? batchNormELU(
                    xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: training,
                    residual: si)
                : (batchNorm(xi, weight: wi, bias: bi, runningMean: mean, runningVariance: variance, training: training)
                    + si).elu()
            y.backward(seed: dOut.data)
            return [y.data, xi.grad!, si.grad!, wi.grad!, bi.grad!, mean.data, variance.data]
        }
        for (index, label) in ["forward", "dx", "dresidual", "dweight", "dbias", "running mean", "running variance"]
            .enumerated()
        {
            let c = compare(
                Tensor(shape: [runs[0][index].count], data: runs[0][index]),
                Tensor(shape: [runs[1][index].count], data: runs[1][index]),
                relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "\(label) training \(training)")
            #expect(c.passed, "\(c)")
        }
        let report = checkGradients(
            of: {
                batchNormELU(
                    $0[0], weight: $0[2], bias: nil, runningMean: Tensor.zeros([4]), runningVariance: Tensor.ones([4]),
                    training: training, residual: $0[1])
            }, at: [x, skip, weight])
        #expect(report.passed, "\(report)")
    }
}
