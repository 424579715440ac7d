// conv2d and convTranspose2d ops: (A) hand-computed cases, (B) finite differences, (C) PyTorch
// parity from Tests/Fixtures/ops_conv (Scripts/fixtures/ops_conv.py), and precondition messages.
import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct ConvolutionTests {
    // MARK: A. hand cases

    @Test func diagonalKernelAddsDiagonalNeighbours() {
        // out[y, x] = x[y, x] + x[y+1, x+1] + 0.5
        let x = Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init), requiresGrad: true)
        let w = Tensor(shape: [1, 1, 2, 2], data: [1, 0, 0, 1], requiresGrad: true)
        let b = Tensor(shape: [1], data: [0.5], requiresGrad: true)
        let y = conv2d(x, weight: w, bias: b)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.data == [6.5, 8.5, 12.5, 14.5])
        y.sum().backward()
        // each input counts the windows whose diagonal covers it
        #expect(x.grad == [1, 1, 0, 1, 2, 1, 0, 1, 1])
        // dW[i, j] = sum of the inputs seen at (i, j): the four 2x2 corners of the image
        #expect(w.grad == [12, 16, 24, 28])
        #expect(b.grad == [4])
    }

    @Test func strideTwoWithPaddingSumsClippedNeighbourhoods() {
        let x = Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init))
        let y = conv2d(x, weight: Tensor.ones([1, 1, 3, 3]), stride: 2, padding: 1)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.data == [12, 16, 24, 28])
    }

    @Test func groupsKeepChannelsApart() {
        let x = Tensor(shape: [1, 2, 1, 1], data: [2, 3])
        let y = conv2d(x, weight: Tensor(shape: [2, 1, 1, 1], data: [10, 100]), groups: 2)
        #expect(y.data == [20, 300])
    }

    @Test func dilationSkipsPixels() {
        // a 2x2 kernel with dilation 2 on a 3x3 image reads the four corners
        let x = Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init))
        let y = conv2d(x, weight: Tensor(shape: [1, 1, 2, 2], data: [1, 10, 100, 1000]), dilation: 2)
        #expect(y.data == [1 + 30 + 700 + 9000])
    }

    @Test func transposedStrideTwoExpandsEachPixelIntoABlock() {
        let x = Tensor(shape: [1, 1, 2, 2], data: [1, 2, 3, 4], requiresGrad: true)
        let w = Tensor(shape: [1, 1, 2, 2], data: [1, 1, 1, 1], requiresGrad: true)
        let b = Tensor(shape: [1], data: [1], requiresGrad: true)
        let y = convTranspose2d(x, weight: w, bias: b, stride: 2)
        #expect(y.shape == [1, 1, 4, 4])
        #expect(y.data == [2, 2, 3, 3, 2, 2, 3, 3, 4, 4, 5, 5, 4, 4, 5, 5])
        y.sum().backward()
        #expect(x.grad == [4, 4, 4, 4])
        #expect(w.grad == [10, 10, 10, 10])
        #expect(b.grad == [16])
    }

    @Test func transposedOutputPaddingAddsTheLastRowAndColumn() {
        // H_out = (1 - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 2; out[y, x] = w[y + 1, x + 1]
        let y = convTranspose2d(
            Tensor(shape: [1, 1, 1, 1], data: [1]), weight: Tensor(shape: [1, 1, 3, 3], data: (1...9).map(Float.init)),
            stride: 2, padding: 1, outputPadding: 1)
        #expect(y.shape == [1, 1, 2, 2])
        #expect(y.data == [5, 6, 8, 9])
    }

    @Test func noGradientModeKeepsNoGraph() {
        let x = Tensor(shape: [1, 2, 4, 4], data: [Float](repeating: 1, count: 32), requiresGrad: true)
        let y = withoutGradient { conv2d(x, weight: Tensor.ones([3, 2, 3, 3]), padding: 1) }
        #expect(!y.requiresGrad && y.isLeaf)
    }

    // MARK: B. finite differences

    @Test(arguments: [
        ConvolutionCase(1, 3, 5, 6, o: 2, k: 3, p: 1),
        ConvolutionCase(2, 4, 7, 5, o: 4, k: 3, s: 2, p: 1, g: 2),
        ConvolutionCase(1, 2, 7, 7, o: 3, k: 3, p: 2, d: 2),
        ConvolutionCase(1, 3, 4, 5, o: 2, k: 1),
    ])
    func conv2dGradientsMatchFiniteDifferences(_ t: ConvolutionCase) {
        let (x, weight, bias, _) = convolutionInputs(t, transposed: false, seed: 3)
        let p = t.parameters
        let report = checkGradients(
            of: {
                conv2d(
                    $0[0], weight: $0[1], bias: $0[2], stride: p.stride, padding: p.padding, dilation: p.dilation,
                    groups: p.groups)
            },
            at: [x, weight, bias], tolerance: 2e-3)
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [
        ConvolutionCase(1, 3, 4, 5, o: 2, k: 3, p: 1),
        ConvolutionCase(2, 4, 3, 4, o: 2, k: 4, s: 2, p: 1, g: 2),
        ConvolutionCase(1, 2, 3, 3, o: 3, k: 3, s: 2, op: 1),
    ])
    func convTranspose2dGradientsMatchFiniteDifferences(_ t: ConvolutionCase) {
        let (x, weight, bias, _) = convolutionInputs(t, transposed: true, seed: 4)
        let p = t.parameters
        let report = checkGradients(
            of: {
                convTranspose2d(
                    $0[0], weight: $0[1], bias: $0[2], stride: p.stride, padding: p.padding,
                    outputPadding: p.outputPadding, dilation: p.dilation, groups: p.groups)
            },
            at: [x, weight, bias], tolerance: 2e-3)
        #expect(report.passed, "\(report)")
    }

    // MARK: C. PyTorch parity

    @Test(arguments: ["conv2d", "conv_transpose2d"], convolutionBackends)
    func matchesPyTorch(_ family: String, _ backend: ConvolutionBackend) throws {
        // Minimum tiles 0: Winograd even on these small shapes (by default they would run on oneDNN).
        try WinogradPolicy.$minimumTiles.withValue(0) {
            try ConvolutionBackend.$preferred.withValue(backend) { try checkPyTorchParity(family, backend) }
        }
    }

    private func checkPyTorchParity(_ family: String, _ backend: ConvolutionBackend) throws {
        // Scripts/fixtures/ops_conv.py: F.conv2d / F.conv_transpose2d, gradients of sum(out * grad_output)
        let file = try Fixtures.load("ops_conv/\(family).safetensors")
        let cases = try #require(
            (try? JSONSerialization.jsonObject(with: Data((file.metadata["cases"] ?? "").utf8))) as? [[String: Any]],
            "fixture metadata has no cases list")
        #expect(cases.count >= 7)
        for fixtureCase in cases {
            let name = fixtureCase["name"] as! String
            func int(_ key: String) -> Int { fixtureCase[key] as! Int }
            let x = try file.tensor("\(name)/x"), weight = try file.tensor("\(name)/weight"),
                bias = try file.tensor("\(name)/bias")
            for leaf in [x, weight, bias] { leaf.requiresGrad = true }
            let out =
                family == "conv2d"
                ? conv2d(
                    x, weight: weight, bias: bias, stride: int("stride"), padding: int("padding"),
                    dilation: int("dilation"), groups: int("groups"))
                : convTranspose2d(
                    x, weight: weight, bias: bias, stride: int("stride"), padding: int("padding"),
                    outputPadding: int("output_padding"), dilation: int("dilation"), groups: int("groups"))
            let expected = try file.tensor("\(name)/output")
            // NOTE: Winograd F(4x4, 3x3) rounds more than direct convolution, with errors near 1e-5 of
            // the output's scale (ConvolutionBackend.preferred); an element-wise bound alone fails it
            // on small outputs beside large ones (channels16: 6.1e-5 on a scale of 18.5 with OpenBLAS's
            // generic Prescott SGEMM kernel, which 0.3.21 picks on CPUs it does not know).
            let scale = backend == .winograd ? max(1, expected.data.map(abs).max() ?? 0) : 1
            let forward = compare(
                out, expected, relativeTolerance: 1e-5, absoluteTolerance: (backend == .winograd ? 4e-5 : 1e-5) * scale,
                label: "\(family) \(name) \(backend) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("\(name)/grad_output").data)
            for (label, leaf) in [("x", x), ("weight", weight), ("bias", bias)] {
                let gradient = compare(
                    leaf.gradTensor!, try file.tensor("\(name)/grad_\(label)"), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-4,
                    label: "\(family) \(name) \(backend) grad \(label)")
                #expect(gradient.passed, "\(gradient)")
            }
        }
    }

    // MARK: preconditions

    @Test func mismatchedChannelsNameBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = conv2d(Tensor.zeros([1, 3, 8, 8]), weight: Tensor.zeros([4, 2, 3, 3]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[1, 3, 8, 8]") && message.contains("[4, 2, 3, 3]"), "\(message)")
    }

    @Test func transposedWrongRankNamesBothShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = convTranspose2d(Tensor.zeros([3, 8, 8]), weight: Tensor.zeros([3, 2, 3, 3]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[3, 8, 8]") && message.contains("[3, 2, 3, 3]"), "\(message)")
    }
}
