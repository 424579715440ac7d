import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct AutogradTests {
    @Test func productRuleOnSharedInput() {
        // y = sum(x * x * 2 + 1): dy/dx = 4x (x used twice: fan-out accumulates)
        let x = Tensor(shape: [3], data: [1, 2, 3], requiresGrad: true)
        let y = (x * x * 2 + 1).sum()
        #expect(y.item == 2 * (1 + 4 + 9) + 3)
        y.backward()
        #expect(x.grad == [4, 8, 12])
    }

    @Test func broadcastingAddReducesGradientToInputShape() {
        let a = Tensor(shape: [2, 3], data: [0, 1, 2, 3, 4, 5], requiresGrad: true)
        let b = Tensor(shape: [3], data: [10, 20, 30], requiresGrad: true)
        let c = (a + b)
        #expect(c.data == [10, 21, 32, 13, 24, 35])
        c.sum().backward()
        #expect(a.grad == [1, 1, 1, 1, 1, 1])
        #expect(b.grad == [2, 2, 2])
    }

    @Test func noGradientModeRecordsNothing() {
        let x = Tensor(shape: [2], data: [1, 2], requiresGrad: true)
        let y = withoutGradient { x * x }
        #expect(!y.requiresGrad)
        #expect(y.isLeaf)
    }

    @Test func graphIsFreedAfterBackward() {
        let x = Tensor(shape: [2], data: [1, 2], requiresGrad: true)
        let hidden = x * x
        let y = hidden.sum()
        y.backward()
        #expect(hidden.isLeaf && y.isLeaf)
    }

    @Test func deepGraphDoesNotOverflowTheStack() {
        let x = Tensor(shape: [1], data: [1], requiresGrad: true)
        var y = x
        for _ in 0..<100_000 { y = y + 0 }
        y.sum().backward()
        #expect(x.grad == [1])
    }

    @Test func divisionGradientsMatchFiniteDifferences() {
        var generator = SplitMix64(seed: 1)
        let a = Tensor.uniform([3, 4], low: -1, high: 1, generator: &generator)
        let b = Tensor.uniform([4], low: 0.5, high: 2, generator: &generator)
        let report = checkGradients(of: { $0[0] / $0[1] * $0[0] - $0[1] }, at: [a, b])
        #expect(report.passed, "\(report)")
    }
}
