import GKNetNeuralNet
import GKNetTensorCore
import Testing

@Suite struct InitializerTests {
    /// Mean and (population) variance in Double.
    func moments(_ t: Tensor) -> (mean: Double, variance: Double) {
        let n = Double(t.count)
        let mean = t.data.reduce(0.0) { $0 + Double($1) } / n
        let variance = t.data.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n
        return (mean, variance)
    }

    @Test func fansFollowPyTorch() {
        #expect(Initializers.fans([8, 3]) == (3, 8))  // Linear [O, C]
        #expect(Initializers.fans([16, 4, 3, 3]) == (36, 144))  // Conv2d [O, C/g, K, K]
        #expect(Initializers.fans([4, 8, 4, 4]) == (128, 64))  // ConvTranspose2d [C, O/g, K, K]
    }

    @Test func gains() {
        #expect(Nonlinearity.relu.gain == Float(2).squareRoot())
        #expect(Nonlinearity.tanh.gain == Float(5) / 3)
        #expect(abs(Nonlinearity.leakyRelu(Float(5).squareRoot()).gain - (1.0 / 3.0).squareRoot()) < 1e-7)
    }

    @Test func pytorchDefaultsAreUniformOverOneOverSqrtFanIn() {
        var g = SplitMix64(seed: 1)
        let w = Initializers.pytorchDefaultWeight([256, 16, 3, 3], generator: &g)
        let bound = 1 / Float(144).squareRoot()
        #expect(w.data.allSatisfy { abs($0) <= bound * (1 + 1e-6) })
        #expect(w.data.max()! > 0.95 * bound && w.data.min()! < -0.95 * bound)
        let (mean, variance) = moments(w)
        // the mean of n = 36864 samples has std bound / sqrt(3 n) ~ 0.003 bound
        #expect(abs(mean) < 0.015 * Double(bound))
        #expect(abs(variance / Double(bound * bound / 3) - 1) < 0.05)
        let b = Initializers.pytorchDefaultBias(64, fanIn: 144, generator: &g)
        #expect(b.shape == [64] && b.data.allSatisfy { abs($0) <= bound } && b.requiresGrad)
    }

    @Test func kaimingAndXavierVariances() {
        var g = SplitMix64(seed: 2)
        let shape = [128, 64, 3, 3]  // fanIn 576, fanOut 1152
        let cases: [(Tensor, Double)] = [
            (Initializers.kaimingUniform(shape, nonlinearity: .relu, generator: &g), 2.0 / 576),
            (Initializers.kaimingNormal(shape, nonlinearity: .relu, generator: &g), 2.0 / 576),
            (Initializers.kaimingNormal(shape, nonlinearity: .relu, mode: .fanOut, generator: &g), 2.0 / 1152),
            (Initializers.xavierUniform(shape, generator: &g), 2.0 / (576 + 1152)),
            (Initializers.xavierNormal(shape, gain: 2, generator: &g), 4 * 2.0 / (576 + 1152)),
        ]
        for (index, (tensor, expected)) in cases.enumerated() {
            let (mean, variance) = moments(tensor)
            #expect(abs(mean) < 0.02 * expected.squareRoot(), "case \(index)")
            #expect(abs(variance / expected - 1) < 0.03, "case \(index): variance \(variance), expected \(expected)")
        }
    }

    @Test func truncatedNormalStaysInBounds() {
        var g = SplitMix64(seed: 3)
        let t = Initializers.truncatedNormal([10_000], std: 1, low: -1, high: 1.5, generator: &g)
        #expect(t.data.allSatisfy { $0 >= -1 && $0 <= 1.5 })
        let small = Initializers.truncatedNormal([10_000], std: 0.02, generator: &g)
        #expect(abs(moments(small).variance.squareRoot() / 0.02 - 1) < 0.03)
    }

    @Test func seedsAreDeterministic() {
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
        let x = Initializers.kaimingUniform([5, 7], generator: &a)
        let y = Initializers.kaimingUniform([5, 7], generator: &b)
        let z = Initializers.kaimingUniform([5, 7], generator: &c)
        #expect(x.data == y.data && x.data != z.data)
        #expect(Initializers.zeros([2, 3]).data == [0, 0, 0, 0, 0, 0] && Initializers.ones([2]).data == [1, 1])
    }
}
