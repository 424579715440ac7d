import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct PoolingTests {
    /// 0, 1, ..., count-1 as an N x C x H x W tensor.
    static func ramp(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.elementCount).map(Float.init), requiresGrad: requiresGrad)
    }

    /// Distinct values at least 0.1 apart in shuffled order, so finite differences never cross a max kink.
    static func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        var generator = SplitMix64(seed: seed)
        var values = (0..<shape.elementCount).map { Float($0) * 0.1 - 1 }
        values.shuffle(using: &generator)
        return Tensor(shape: shape, data: values)
    }

    // MARK: A. hand cases

    @Test func averageAndMaxOfTwoByTwoWindows() {
        let x = Self.ramp([1, 1, 4, 4], requiresGrad: true)
        #expect(avgPool2d(x, kernelSize: 2, stride: 2).data == [2.5, 4.5, 10.5, 12.5])
        let pooled = maxPool2d(x, kernelSize: 2, stride: 2)
        #expect(pooled.shape == [1, 1, 2, 2])
        #expect(pooled.data == [5, 7, 13, 15])
        pooled.backward(seed: [1, 2, 3, 4])
        #expect(x.grad == [0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4])
    }

    @Test func averagePoolingCountsPaddingAsZeros() {
        let x = Tensor.ones([1, 1, 3, 3], requiresGrad: true)
        let y = avgPool2d(x, kernelSize: 3, stride: 1, padding: 1)
        let (corner, edge): (Float, Float) = (4.0 / 9, 6.0 / 9)
        #expect(compare(y.data, [corner, edge, corner, edge, 1, edge, corner, edge, corner]).passed)
        y.sum().backward()
        // every input pixel is covered by as many windows as it has in-image neighbours (itself included)
        let expected: [Float] = [4, 6, 4, 6, 9, 6, 4, 6, 4].map { $0 / 9 }
        #expect(compare(x.grad!, expected).passed)
    }

    @Test func maxPoolingSendsTiesToTheFirstMaximum() {
        let x = Tensor(repeating: 2, shape: [1, 1, 3, 3], requiresGrad: true)
        let y = maxPool2d(x, kernelSize: 2, stride: 1)
        #expect(y.data == [2, 2, 2, 2])
        y.sum().backward()
        // windows start at (0,0), (0,1), (1,0), (1,1): each top-left pixel gets its window's gradient
        #expect(x.grad == [1, 1, 0, 1, 1, 0, 0, 0, 0])
    }

    @Test func maxPoolingNeverPicksPadding() {
        let x = Tensor(shape: [1, 1, 2, 2], data: [-5, -6, -7, -8])
        #expect(maxPool2d(x, kernelSize: 3, stride: 2, padding: 1).data == [-5])
    }

    @Test func adaptiveBinsOverlapLikePyTorch() {
        // W = 5 -> 3 bins: [0, 2), [1, 4), [3, 5)
        let x = Self.ramp([1, 1, 1, 5], requiresGrad: true)
        let y = adaptiveAvgPool2d(x, outputHeight: 1, outputWidth: 3)
        #expect(y.data == [0.5, 2, 3.5])
        y.sum().backward()
        #expect(compare(x.grad!, [0.5, 0.5 + 1.0 / 3, 1.0 / 3, 1.0 / 3 + 0.5, 0.5]).passed)
    }

    // MARK: B. finite differences

    @Test(arguments: [
        ([1, 2, 7, 5], 3, 2, 1), ([2, 1, 6, 6], 2, 2, 0), ([1, 3, 5, 9], 3, 1, 0), ([1, 1, 4, 3], 5, 3, 2),
    ])
    func averagePoolingGradients(shape: [Int], kernel: Int, stride: Int, padding: Int) {
        var generator = SplitMix64(seed: 5)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let report = checkGradients(
            of: { avgPool2d($0[0], kernelSize: kernel, stride: stride, padding: padding) }, at: [x])
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [
        ([1, 2, 7, 5], 3, 2, 1), ([2, 1, 6, 6], 2, 2, 0), ([1, 3, 5, 9], 3, 1, 0), ([1, 1, 4, 3], 5, 3, 2),
    ])
    func maxPoolingGradients(shape: [Int], kernel: Int, stride: Int, padding: Int) {
        let x = Self.distinct(shape, seed: 9)
        let report = checkGradients(
            of: { maxPool2d($0[0], kernelSize: kernel, stride: stride, padding: padding) }, at: [x])
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [([1, 2, 7, 5], 3, 2), ([1, 1, 5, 9], 4, 4), ([2, 1, 3, 4], 5, 7), ([1, 2, 6, 6], 1, 1)])
    func adaptivePoolingGradients(shape: [Int], height: Int, width: Int) {
        var generator = SplitMix64(seed: 6)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let report = checkGradients(of: { adaptiveAvgPool2d($0[0], outputHeight: height, outputWidth: width) }, at: [x])
        #expect(report.passed, "\(report)")
    }

    // MARK: fast vs naive on unfriendly shapes

    @Test func kernelsMatchNaiveLoops() {
        var generator = SplitMix64(seed: 8)
        for (shape, kernel, stride, padding) in [
            ([1, 1, 1, 1], 1, 1, 0), ([2, 3, 1, 7], 1, 2, 0), ([1, 2, 3, 3], 3, 5, 1), ([1, 1, 13, 2], 2, 3, 1),
            ([3, 1, 8, 11], 4, 3, 2), ([1, 5, 5, 5], 5, 1, 2),
        ] {
            let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
            let label = "\(shape) k\(kernel) s\(stride) p\(padding)"
            let average = compare(
                avgPool2d(x, kernelSize: kernel, stride: stride, padding: padding),
                ReferenceKernels.pool2d(x, kernelSize: kernel, stride: stride, padding: padding, max: false),
                label: "avg \(label)")
            let maximum = compare(
                maxPool2d(x, kernelSize: kernel, stride: stride, padding: padding),
                ReferenceKernels.pool2d(x, kernelSize: kernel, stride: stride, padding: padding, max: true),
                label: "max \(label)")
            #expect(average.passed, "\(average)")
            #expect(maximum.passed, "\(maximum)")
        }
        for (shape, height, width) in [
            ([1, 1, 1, 1], 3, 2), ([2, 2, 7, 13], 3, 5), ([1, 1, 17, 4], 6, 4), ([1, 3, 9, 9], 9, 2),
        ] {
            let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
            let adaptive = compare(
                adaptiveAvgPool2d(x, outputHeight: height, outputWidth: width),
                ReferenceKernels.adaptiveAvgPool2d(x, outputHeight: height, outputWidth: width),
                label: "adaptive \(shape) -> \(height)x\(width)")
            #expect(adaptive.passed, "\(adaptive)")
        }
    }

    @Test func bigShapesKeepForwardAndBackwardAdjoint() {
        let shape = [2, 8, 33, 29]
        let average = adjointMismatch({ avgPool2d($0, kernelSize: 3, stride: 2, padding: 1) }, shape, seed: 1)
        let adaptive = adjointMismatch({ adaptiveAvgPool2d($0, outputHeight: 10, outputWidth: 7) }, shape, seed: 2)
        #expect(average < 1e-5, "avgPool2d adjoint mismatch \(average)")
        #expect(adaptive < 1e-5, "adaptiveAvgPool2d adjoint mismatch \(adaptive)")
        var generator = SplitMix64(seed: 3)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let maximum = compare(
            maxPool2d(x, kernelSize: 3, stride: 2, padding: 1),
            ReferenceKernels.pool2d(x, kernelSize: 3, stride: 2, padding: 1, max: true), label: "max \(shape)")
        #expect(maximum.passed, "\(maximum)")
    }

    // MARK: C. PyTorch parity

    @Test func matchesPyTorch() throws {
        // Scripts/fixtures/ops_spatial.py: F.avg_pool2d(count_include_pad=True), F.max_pool2d, F.adaptive_avg_pool2d
        let file = try Fixtures.load("ops_spatial/pooling.safetensors")
        for fixtureCase in try file.cases() {
            let x = try file.tensor("x", of: fixtureCase)
            x.requiresGrad = true
            let out: Tensor
            switch fixtureCase.string("op") {
            case "avg":
                out = avgPool2d(
                    x, kernelSize: fixtureCase.int("kernel"), stride: fixtureCase.int("stride"),
                    padding: fixtureCase.int("padding"))
            case "max":
                out = maxPool2d(
                    x, kernelSize: fixtureCase.int("kernel"), stride: fixtureCase.int("stride"),
                    padding: fixtureCase.int("padding"))
            default:
                out = adaptiveAvgPool2d(
                    x, outputHeight: fixtureCase.int("height"), outputWidth: fixtureCase.int("width"))
            }
            let forward = compare(
                out, try file.tensor("output", of: fixtureCase), relativeTolerance: 1e-5, absoluteTolerance: 1e-6,
                label: "\(fixtureCase) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("grad_output", of: fixtureCase).data)
            let gradient = compare(
                x.gradTensor!, try file.tensor("grad_x", of: fixtureCase), relativeTolerance: 1e-4,
                absoluteTolerance: 1e-6, label: "\(fixtureCase) grad x")
            #expect(gradient.passed, "\(gradient)")
        }
    }

    // MARK: preconditions

    @Test func windowLargerThanInputNamesTheShape() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = maxPool2d(Tensor.zeros([1, 2, 3, 3]), kernelSize: 5, stride: 1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[1, 2, 3, 3]") && message.contains("[5, 5]"), "\(message)")
    }
}

/// For a linear map f, the pullback is its adjoint: Σ f(x)·r = Σ x·fᵀ(r). Checked in Double on big
/// shapes, where the kernels split their work over threads (a race or a lost chunk breaks the identity).
func adjointMismatch(_ f: (Tensor) -> Tensor, _ shape: [Int], seed: UInt64) -> Double {
    var generator = SplitMix64(seed: seed)
    let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator, requiresGrad: true)
    let y = f(x)
    let r = Tensor.uniform(y.shape, low: -1, high: 1, generator: &generator)
    y.backward(seed: r.data)
    var forward = 0.0, backward = 0.0, scale = 0.0
    for i in 0..<y.count {
        forward += Double(y.data[i]) * Double(r.data[i])
        scale += abs(Double(y.data[i]) * Double(r.data[i]))
    }
    for i in 0..<x.count { backward += Double(x.data[i]) * Double(x.grad![i]) }
    return abs(forward - backward) / max(scale, 1)
}
