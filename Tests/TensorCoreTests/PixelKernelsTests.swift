import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct PixelKernelsTests {
    /// Kernels that put weight 1 on tap `t` at every pixel, for `groups` groups.
    static func oneHot(tap: Int, groups: Int, kernelSize: Int, height: Int, width: Int) -> Tensor {
        let taps = kernelSize * kernelSize
        var data = [Float](repeating: 0, count: groups * taps * height * width)
        for group in 0..<groups {
            for p in 0..<height * width { data[(group * taps + tap) * height * width + p] = 1 }
        }
        return Tensor(shape: [1, groups * taps, height, width], data: data)
    }

    // MARK: A. hand cases

    @Test func centreTapIsTheIdentity() {
        let x = Tensor(shape: [1, 2, 3, 3], data: (0..<18).map(Float.init))
        let kernels = Self.oneHot(tap: 4, groups: 1, kernelSize: 3, height: 3, width: 3)
        #expect(applyPixelKernels(x, kernels: kernels, kernelSize: 3).data == x.data)
    }

    @Test func cornerTapShiftsWithZeroPadding() {
        // tap (0, 0) reads x[y - dil, x - dil]
        let x = Tensor(shape: [1, 1, 3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9], requiresGrad: true)
        let kernels = Self.oneHot(tap: 0, groups: 1, kernelSize: 3, height: 3, width: 3)
        kernels.requiresGrad = true
        let y = applyPixelKernels(x, kernels: kernels, kernelSize: 3)
        #expect(y.data == [0, 0, 0, 0, 1, 2, 0, 4, 5])
        y.sum().backward()
        // each input pixel is read once unless it lies on the last row or column
        #expect(x.grad == [1, 1, 0, 1, 1, 0, 0, 0, 0])
        // dK[tap, y, x] = x[y-1, x-1] (zero outside): the shifted image on tap 0, and so on
        #expect(Array(kernels.grad![0..<9]) == [0, 0, 0, 0, 1, 2, 0, 4, 5])
        #expect(Array(kernels.grad![36..<45]) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let dilated = applyPixelKernels(
            x.detached(), kernels: Self.oneHot(tap: 8, groups: 1, kernelSize: 3, height: 3, width: 3), kernelSize: 3,
            dilation: 2)
        // tap (2, 2) with dilation 2 reads x[y + 2, x + 2]
        #expect(dilated.data == [9, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func groupsShareKernelsAcrossTheirChannels() {
        // C = 4, G = 2: channels 0, 1 use kernel group 0 (weights 2 on the centre), channels 2, 3 use group 1 (3)
        let x = Tensor(shape: [1, 4, 1, 2], data: [1, 2, 3, 4, 5, 6, 7, 8])
        var kernelData = [Float](repeating: 0, count: 2 * 9 * 2)
        for p in 0..<2 {
            kernelData[4 * 2 + p] = 2
            kernelData[(9 + 4) * 2 + p] = 3
        }
        let kernels = Tensor(shape: [1, 18, 1, 2], data: kernelData)
        #expect(applyPixelKernels(x, kernels: kernels, kernelSize: 3).data == [2, 4, 6, 8, 15, 18, 21, 24])
    }

    // MARK: B. finite differences

    @Test(arguments: [
        ([1, 2, 5, 4], 1, 3, 1), ([2, 4, 3, 5], 2, 3, 2), ([1, 3, 7, 3], 3, 5, 1), ([1, 2, 4, 6], 1, 5, 2),
        ([1, 1, 1, 1], 1, 3, 1),
    ])
    func gradientsMatchFiniteDifferences(shape: [Int], groups: Int, kernelSize: Int, dilation: Int) {
        var generator = SplitMix64(seed: 13)
        let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
        let kernels = Tensor.uniform(
            [shape[0], groups * kernelSize * kernelSize, shape[2], shape[3]], low: -1, high: 1, generator: &generator)
        let report = checkGradients(
            of: { applyPixelKernels($0[0], kernels: $0[1], kernelSize: kernelSize, dilation: dilation) },
            at: [x, kernels])
        #expect(report.passed, "\(report)")
    }

    // MARK: fused kernel vs naive loops

    @Test func fusedKernelsMatchNaiveLoops() {
        var generator = SplitMix64(seed: 21)
        for (shape, kernelSize, dilation) in [
            ([2, 6, 7, 9], 3, 1), ([1, 6, 9, 13], 3, 2), ([1, 6, 5, 3], 5, 1), ([2, 6, 11, 5], 5, 2),
            ([1, 6, 2, 1], 5, 2),
            // big enough for parallelChunks to split the rows over threads (with 2 or more threads)
            ([1, 6, 41, 37], 3, 1),
        ] {
            for groups in [1, 2, 3, 6] {
                let x = Tensor.uniform(shape, low: -1, high: 1, generator: &generator, requiresGrad: true)
                let kernels = Tensor.uniform(
                    [shape[0], groups * kernelSize * kernelSize, shape[2], shape[3]], low: -1, high: 1,
                    generator: &generator,
                    requiresGrad: true)
                let label = "\(shape) g\(groups) k\(kernelSize) d\(dilation)"
                let y = applyPixelKernels(x, kernels: kernels, kernelSize: kernelSize, dilation: dilation)
                let naive = ReferenceKernels.pixelKernels(
                    x, kernels: kernels, kernelSize: kernelSize, dilation: dilation)
                let forward = compare(
                    y, naive, relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "forward \(label)")
                #expect(forward.passed, "\(forward)")
                let dOut = Tensor.uniform(shape, low: -1, high: 1, generator: &generator)
                y.backward(seed: dOut.data)
                let (dx, dk) = ReferenceKernels.pixelKernelsGradients(
                    x, kernels: kernels, kernelSize: kernelSize, dilation: dilation, dOutput: dOut)
                let cx = compare(
                    x.gradTensor!, dx, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, label: "dx \(label)")
                let ck = compare(
                    kernels.gradTensor!, dk, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, label: "dK \(label)")
                #expect(cx.passed, "\(cx)")
                #expect(ck.passed, "\(ck)")
            }
        }
    }

    // MARK: C. PyTorch parity

    @Test func matchesPyTorchUnfoldFormula() throws {
        // Scripts/fixtures/ops_spatial.py: (F.unfold(x, k, dilation=d, padding=d*(k//2)).view(N, G, C/G, k², H, W)
        //   * kernels.view(N, G, 1, k², H, W)).sum(3)
        let file = try Fixtures.load("ops_spatial/pixel_kernels.safetensors")
        for fixtureCase in try file.cases() {
            let x = try file.tensor("x", of: fixtureCase)
            let kernels = try file.tensor("kernels", of: fixtureCase)
            x.requiresGrad = true
            kernels.requiresGrad = true
            let out = applyPixelKernels(
                x, kernels: kernels, kernelSize: fixtureCase.int("kernel"), dilation: fixtureCase.int("dilation"))
            let forward = compare(
                out, try file.tensor("output", of: fixtureCase), relativeTolerance: 1e-5, absoluteTolerance: 1e-5,
                label: "\(fixtureCase) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("grad_output", of: fixtureCase).data)
            for (name, input) in [("x", x), ("kernels", kernels)] {
                let gradient = compare(
                    input.gradTensor!, try file.tensor("grad_\(name)", of: fixtureCase), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-5, label: "\(fixtureCase) grad \(name)")
                #expect(gradient.passed, "\(gradient)")
            }
        }
    }

    // MARK: preconditions

    @Test func groupsThatDoNotDivideChannelsNameBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = applyPixelKernels(Tensor.zeros([1, 3, 4, 4]), kernels: Tensor.zeros([1, 18, 4, 4]), kernelSize: 3)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[1, 3, 4, 4]") && message.contains("[1, 18, 4, 4]"), "\(message)")
    }
}
