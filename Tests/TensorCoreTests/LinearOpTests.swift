import GKNetTensorCore
import GKNetTestSupport
import Testing

/// linear(x, weight:, bias:) = x W^T + b: (A) by hand, (B) finite differences, and equality with the
/// composition matmul(x, W^T) + b, whose parts have PyTorch parity tests.
@Suite struct LinearOpTests {
    @Test func handComputed() {
        // x = [[1, 2]], W = [[1, 0], [2, -1], [0, 3]], b = [0.5, 0, -1]: y = [1.5, 0, 5]
        let x = Tensor(shape: [1, 2], data: [1, 2], requiresGrad: true)
        let w = Tensor(shape: [3, 2], data: [1, 0, 2, -1, 0, 3], requiresGrad: true)
        let b = Tensor(shape: [3], data: [0.5, 0, -1], requiresGrad: true)
        let y = linear(x, weight: w, bias: b)
        #expect(y.shape == [1, 3] && y.data == [1.5, 0, 5])
        y.sum().backward()
        #expect(x.grad == [3, 2])  // column sums of W
        #expect(w.grad == [1, 2, 1, 2, 1, 2])  // x in every row
        #expect(b.grad == [1, 1, 1])
        #expect(linear(x.detached(), weight: w.detached()).data == [1, 0, 6])
    }

    @Test(arguments: [[3, 4], [2, 3, 5], [1, 1], [4, 1, 2]])
    func gradientsMatchFiniteDifferences(shape: [Int]) {
        var generator = SplitMix64(seed: 53)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let w = Tensor.uniform([3, shape.last!], low: -1, high: 1, generator: &generator)
        let b = Tensor.uniform([3], low: -1, high: 1, generator: &generator)
        let report = checkGradients(of: { linear($0[0], weight: $0[1], bias: $0[2]) }, at: [x, w, b])
        #expect(report.passed, "\(shape): \(report)")
    }

    @Test func equalsTheComposition() {
        var generator = SplitMix64(seed: 59)
        for (shape, outputs, withBias) in [([7, 33], 17, true), ([2, 5, 64], 48, false), ([3, 1, 9], 1, true)] {
            let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
            let w = Tensor.uniform([outputs, shape.last!], low: -1, high: 1, generator: &generator)
            let b = Tensor.uniform([outputs], low: -1, high: 1, generator: &generator)
            let dOut = Tensor.uniform(Array(shape.dropLast()) + [outputs], low: -1, high: 1, generator: &generator)
            let runs = [true, false].map { fused in
                let (xi, wi, bi) = (x.detached(), w.detached(), b.detached())
                for t in [xi, wi, bi] { t.requiresGrad = true }
                var y: Tensor
                if fused {
                    y = linear(xi, weight: wi, bias: withBias ? bi : nil)
                } else {
                    y = matmul(xi, wi.transposed(0, 1))
                    if withBias { y = y + bi }
                }
                y.backward(seed: dOut.data)
                return [y.data, xi.grad!, wi.grad!] + (withBias ? [bi.grad!] : [])
            }
            for index in runs[0].indices {
                let c = compare(
                    Tensor(shape: [runs[0][index].count], data: runs[0][index]),
                    Tensor(shape: [runs[1][index].count], data: runs[1][index]),
                    relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "\(shape) -> \(outputs) part \(index)")
                #expect(c.passed, "\(c)")
            }
        }
    }
}
