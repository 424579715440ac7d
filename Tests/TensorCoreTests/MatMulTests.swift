import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct MatMulTests {
    // MARK: A. hand cases

    @Test func twoByThreeTimesThreeByTwo() {
        let a = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6], requiresGrad: true)
        let b = Tensor(shape: [3, 2], data: [7, 8, 9, 10, 11, 12], requiresGrad: true)
        let c = matmul(a, b)
        #expect(c.shape == [2, 2])
        #expect(c.data == [58, 64, 139, 154])
        c.sum().backward()
        // dA = ones(2,2) · Bᵀ: each row is the row sums of B; dB = Aᵀ · ones: each row is a column sum of A
        #expect(a.grad == [15, 19, 23, 15, 19, 23])
        #expect(b.grad == [5, 5, 7, 7, 9, 9])
    }

    @Test func sharedWeightSumsItsGradientOverTheBatch() {
        let a = Tensor(shape: [2, 1, 2], data: [1, 2, 3, 4], requiresGrad: true)
        let w = Tensor(shape: [2, 1], data: [10, 100], requiresGrad: true)
        let c = a.matmul(w)
        #expect(c.shape == [2, 1, 1])
        #expect(c.data == [210, 430])
        c.sum().backward()
        #expect(a.grad == [10, 100, 10, 100])
        #expect(w.grad == [4, 6])
    }

    @Test func batchedItemsStaySeparate() {
        let a = Tensor(shape: [2, 1, 1], data: [2, 3])
        let b = Tensor(shape: [2, 1, 2], data: [1, 10, 100, 1000])
        #expect(matmul(a, b).data == [2, 20, 300, 3000])
    }

    // MARK: B. finite differences

    @Test(arguments: [
        ([3, 4], [4, 5]), ([2, 3, 5], [5, 4]), ([2, 3, 4], [2, 4, 1]), ([2, 1, 3, 7], [2, 1, 7, 3]), ([1, 1], [1, 1]),
    ])
    func gradientsMatchFiniteDifferences(aShape: [Int], bShape: [Int]) {
        var generator = SplitMix64(seed: 11)
        let a = Tensor.uniform(aShape, low: -1, high: 1, generator: &generator)
        let b = Tensor.uniform(bShape, low: -1, high: 1, generator: &generator)
        let report = checkGradients(of: { matmul($0[0], $0[1]) }, at: [a, b])
        #expect(report.passed, "\(report)")
    }

    // MARK: fast (BLAS) vs naive on unfriendly shapes

    @Test(arguments: [
        ([3, 17, 31], [3, 31, 13]), ([2, 2, 1, 9], [2, 2, 9, 1]), ([4, 7, 33], [33, 5]), ([65, 1], [1, 67]),
        ([1, 129], [129, 3]), ([5, 3, 0], [0, 4]),
    ])
    func blasMatchesNaiveLoops(aShape: [Int], bShape: [Int]) {
        var generator = SplitMix64(seed: 3)
        let a = Tensor.uniform(aShape, low: -1, high: 1, generator: &generator, requiresGrad: true)
        let b = Tensor.uniform(bShape, low: -1, high: 1, generator: &generator, requiresGrad: true)
        let c = matmul(a, b)
        let expected = ReferenceKernels.matmul(a, b)
        let forward = compare(
            c, expected, relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "matmul \(aShape) x \(bShape)")
        #expect(forward.passed, "\(forward)")
        let dOut = Tensor.uniform(c.shape, low: -1, high: 1, generator: &generator)
        c.backward(seed: dOut.data)
        let (dA, dB) = ReferenceKernels.matmulGradients(a, b, dOutput: dOut)
        let ca = compare(a.gradTensor!, dA, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, label: "dA")
        let cb = compare(b.gradTensor!, dB, relativeTolerance: 1e-4, absoluteTolerance: 1e-5, label: "dB")
        #expect(ca.passed, "\(ca)")
        #expect(cb.passed, "\(cb)")
    }

    @Test func onlyTheWantedGradientIsComputed() {
        let a = Tensor(shape: [2, 2], data: [1, 2, 3, 4], requiresGrad: true)
        let b = Tensor(shape: [2, 2], data: [1, 0, 0, 1])
        matmul(a, b).sum().backward()
        #expect(a.grad == [1, 1, 1, 1])
        #expect(b.grad == nil)
    }

    // MARK: C. PyTorch parity

    @Test func matchesPyTorch() throws {
        // Scripts/fixtures/ops_spatial.py: torch.matmul(a, b); grads of sum(out * grad_output)
        let file = try Fixtures.load("ops_spatial/matmul.safetensors")
        for fixtureCase in try file.cases() {
            let a = try file.tensor("a", of: fixtureCase)
            let b = try file.tensor("b", of: fixtureCase)
            a.requiresGrad = true
            b.requiresGrad = true
            let out = matmul(a, b)
            let forward = compare(
                out, try file.tensor("output", of: fixtureCase), relativeTolerance: 1e-5, absoluteTolerance: 1e-5,
                label: "\(fixtureCase) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("grad_output", of: fixtureCase).data)
            for (name, input) in [("a", a), ("b", b)] {
                let gradient = compare(
                    input.gradTensor!, try file.tensor("grad_\(name)", of: fixtureCase), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-5, label: "\(fixtureCase) grad \(name)")
                #expect(gradient.passed, "\(gradient)")
            }
        }
    }

    // MARK: preconditions name both shapes

    @Test func mismatchedInnerDimensionsNameBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 5]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[2, 3]") && message.contains("[4, 5]"), "\(message)")
    }
}
