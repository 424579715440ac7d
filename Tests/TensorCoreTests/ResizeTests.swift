import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct ResizeTests {
    // MARK: A. hand cases

    @Test func bilinearUpsamplingOfALinearImage() {
        // x[y, x] = 2y + x on 2 x 2; output coordinates map to src = max(0, 0.5·(o + 0.5) - 0.5) = 0, .25, .75, 1.25,
        // and the last one reads the clamped edge: per-axis values 0, 0.25, 0.75, 1
        let x = Tensor(shape: [1, 1, 2, 2], data: [0, 1, 2, 3])
        let y = resizeBilinear(x, height: 4, width: 4)
        let axis: [Float] = [0, 0.25, 0.75, 1]
        let expected = axis.flatMap { row in axis.map { 2 * row + $0 } }
        #expect(y.shape == [1, 1, 4, 4])
        #expect(compare(y.data, expected).passed, "\(y.data)")
    }

    @Test func bilinearDownsamplingAveragesNeighbours() {
        // 4 -> 2: src = 2·(o + 0.5) - 0.5 = 0.5, 2.5
        let x = Tensor(shape: [1, 1, 1, 4], data: [0, 10, 20, 30], requiresGrad: true)
        let y = resizeBilinear(x, height: 1, width: 2)
        #expect(y.data == [5, 25])
        y.backward(seed: [1, 2])
        #expect(x.grad == [0.5, 0.5, 1, 1])
    }

    @Test func sameSizeIsTheIdentity() {
        var generator = SplitMix64(seed: 1)
        let x = Tensor.uniform([2, 3, 5, 7], low: -1, high: 1, generator: &generator)
        #expect(resizeBilinear(x, height: 5, width: 7).data == x.data)
        #expect(resizeBicubic(x, height: 5, width: 7).data == x.data)
    }

    @Test func bicubicKeepsConstantsAndInteriorRamps() {
        let constant = Tensor(repeating: 3, shape: [1, 2, 3, 5])
        #expect(compare(resizeBicubic(constant, height: 7, width: 4).data, [Float](repeating: 3, count: 2 * 28)).passed)
        // 8 -> 16 on a ramp: src = (o + 0.5)/2 - 0.5 has fraction t = 0.25 (odd o) or 0.75 (even o).
        // With a = -0.75 the weights at t = 0.25 are W(1.25), W(0.25), W(0.75), W(1.75) =
        // -0.10546875, 0.87890625, 0.26171875, -0.03515625 on taps -1, 0, 1, 2, so where no tap is clamped
        // out = i + (-(-0.10546875) + 0.26171875 + 2·(-0.03515625)) = src + 3/64 (and src - 3/64 at t = 0.75).
        let ramp = Tensor(shape: [1, 1, 1, 8], data: (0..<8).map(Float.init))
        let y = resizeBicubic(ramp, height: 1, width: 16)
        for o in 3..<13 {
            let source = (Float(o) + 0.5) / 2 - 0.5
            let expected = source + (o % 2 == 1 ? 3.0 / 64 : -3.0 / 64)
            #expect(abs(y.data[o] - expected) < 1e-6, "output \(o): \(y.data[o]) vs \(expected)")
        }
        // o = 0: src = -0.25, taps clamp to x[0], x[0], x[0], x[1] = 0, 0, 0, 1, weight of the last W(1.25)
        #expect(abs(y.data[0] - (-0.10546875)) < 1e-6, "\(y.data[0])")
    }

    // MARK: B. finite differences

    @Test(arguments: [([1, 2, 3, 5], 7, 4), ([2, 1, 6, 5], 3, 2), ([1, 1, 1, 1], 2, 3), ([1, 1, 5, 4], 5, 9)])
    func gradientsMatchFiniteDifferences(shape: [Int], height: Int, width: Int) {
        var generator = SplitMix64(seed: 2)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let bilinear = checkGradients(of: { resizeBilinear($0[0], height: height, width: width) }, at: [x])
        #expect(bilinear.passed, "bilinear \(bilinear)")
        let bicubic = checkGradients(of: { resizeBicubic($0[0], height: height, width: width) }, at: [x])
        #expect(bicubic.passed, "bicubic \(bicubic)")
    }

    // MARK: separable kernel vs naive per-pixel formula

    @Test func kernelsMatchNaiveFormula() {
        var generator = SplitMix64(seed: 4)
        for (shape, height, width) in [
            ([1, 1, 1, 1], 5, 3), ([1, 2, 13, 3], 2, 29), ([2, 1, 7, 7], 3, 11), ([1, 1, 2, 31], 17, 6),
            ([1, 3, 9, 10], 1, 1),
            ([1, 1, 16, 16], 37, 21),
        ] {
            let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
            for cubic in [false, true] {
                let fast =
                    cubic
                    ? resizeBicubic(x, height: height, width: width) : resizeBilinear(x, height: height, width: width)
                let naive = ReferenceKernels.resize(x, height: height, width: width, cubic: cubic)
                let comparison = compare(
                    fast, naive, relativeTolerance: 1e-5, absoluteTolerance: 1e-5,
                    label: "\(cubic ? "bicubic" : "bilinear") \(shape) -> \(height)x\(width)")
                #expect(comparison.passed, "\(comparison)")
            }
        }
    }

    @Test func bigShapesKeepForwardAndBackwardAdjoint() {
        for (height, width) in [(57, 45), (17, 11)] {
            let bilinear = adjointMismatch(
                { resizeBilinear($0, height: height, width: width) }, [1, 8, 40, 30], seed: 5)
            let bicubic = adjointMismatch({ resizeBicubic($0, height: height, width: width) }, [1, 8, 40, 30], seed: 6)
            #expect(bilinear < 1e-5, "bilinear to \(height)x\(width): adjoint mismatch \(bilinear)")
            #expect(bicubic < 1e-5, "bicubic to \(height)x\(width): adjoint mismatch \(bicubic)")
        }
    }

    // MARK: C. PyTorch parity

    @Test func matchesPyTorch() throws {
        // Scripts/fixtures/ops_spatial.py:
        // F.interpolate(x, size=(OH, OW), mode='bilinear' | 'bicubic', align_corners=False)
        let file = try Fixtures.load("ops_spatial/resize.safetensors")
        for fixtureCase in try file.cases() {
            let x = try file.tensor("x", of: fixtureCase)
            x.requiresGrad = true
            let (height, width) = (fixtureCase.int("height"), fixtureCase.int("width"))
            let out =
                fixtureCase.string("mode") == "bicubic"
                ? resizeBicubic(x, height: height, width: width) : resizeBilinear(x, height: height, width: width)
            let forward = compare(
                out, try file.tensor("output", of: fixtureCase), relativeTolerance: 1e-5, absoluteTolerance: 3e-6,
                label: "\(fixtureCase) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("grad_output", of: fixtureCase).data)
            let gradient = compare(
                x.gradTensor!, try file.tensor("grad_x", of: fixtureCase), relativeTolerance: 1e-4,
                absoluteTolerance: 1e-5, label: "\(fixtureCase) grad x")
            #expect(gradient.passed, "\(gradient)")
        }
    }

    // MARK: preconditions

    @Test func wrongRankNamesTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = resizeBilinear(Tensor.zeros([3, 4, 5]), height: 6, width: 7)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[3, 4, 5]"), "\(message)")
    }
}
