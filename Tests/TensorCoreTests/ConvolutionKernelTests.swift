// Fast convolution kernels (oneDNN blocked and plain layouts, im2col + sgemm) against the naive
// loops of _TestSupport/ReferenceConvolution.swift, forward and backward, on unfriendly shapes.
import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// One convolution case: input N x C x H x W, O output channels, K x K kernel.
struct ConvolutionCase: CustomTestStringConvertible, Sendable {
    var n: Int, c: Int, h: Int, w: Int, o: Int, k: Int
    var parameters: ReferenceConvolution.Parameters
    init(
        _ n: Int, _ c: Int, _ h: Int, _ w: Int, o: Int, k: Int, s: Int = 1, p: Int = 0, d: Int = 1, g: Int = 1,
        op: Int = 0
    ) {
        (self.n, self.c, self.h, self.w, self.o, self.k) = (n, c, h, w, o, k)
        parameters = .init(stride: s, padding: p, dilation: d, groups: g, outputPadding: op)
    }
    var testDescription: String { "\(n)x\(c)x\(h)x\(w) -> \(o), K\(k) \(parameters)" }
}

let unfriendlyConvolutions: [ConvolutionCase] = [
    ConvolutionCase(2, 3, 7, 9, o: 5, k: 3, p: 1),  // odd sizes
    ConvolutionCase(1, 4, 8, 8, o: 6, k: 3, s: 2, p: 1),  // stride 2
    ConvolutionCase(2, 4, 9, 10, o: 4, k: 3, p: 2, d: 2),  // dilation 2
    ConvolutionCase(1, 6, 7, 5, o: 9, k: 3, p: 1, g: 3),  // groups
    ConvolutionCase(1, 8, 6, 6, o: 8, k: 3, p: 1, g: 8),  // depthwise
    ConvolutionCase(2, 5, 6, 7, o: 3, k: 1),  // 1x1 (pointwise path)
    ConvolutionCase(1, 7, 5, 9, o: 20, k: 1),  // 1x1, one image: its columns split over the threads
    ConvolutionCase(3, 16, 8, 8, o: 9, k: 1),  // 1x1, more images than threads, odd output channels
    ConvolutionCase(1, 5, 7, 6, o: 3, k: 1, s: 2),  // strided 1x1
    ConvolutionCase(1, 3, 9, 8, o: 4, k: 4, s: 2, p: 1),  // 4x4, stride 2
    ConvolutionCase(1, 2, 8, 7, o: 3, k: 4),  // even kernel, no padding
    ConvolutionCase(1, 4, 10, 11, o: 4, k: 3, s: 2, d: 2),  // stride + dilation, last rows unused
    ConvolutionCase(1, 3, 5, 5, o: 2, k: 5, p: 2),  // 5x5
    ConvolutionCase(2, 16, 10, 9, o: 32, k: 3, p: 1, g: 2),  // channels that blocked layouts like
    ConvolutionCase(1, 2, 5, 4200, o: 2, k: 3, s: 2, p: 1),  // wide rows: im2col works in several row chunks
    ConvolutionCase(1, 16, 9, 11, o: 16, k: 3, p: 1),  // Winograd: partial 4x4 tiles
    ConvolutionCase(2, 17, 6, 7, o: 24, k: 3),  // Winograd, no padding
    ConvolutionCase(1, 16, 7, 8, o: 19, k: 3, p: 2),  // Winograd, padding 2
    // Winograd forward only (the input is too small for backward-data)
    ConvolutionCase(1, 16, 3, 2, o: 16, k: 3, p: 2),
    ConvolutionCase(1, 16, 5, 37, o: 16, k: 3, p: 2),  // Winograd: rows wide enough for the SIMD phase split / merge
    ConvolutionCase(2, 16, 6, 38, o: 17, k: 3),  // the same without padding
]

let unfriendlyTransposedConvolutions: [ConvolutionCase] = [
    ConvolutionCase(2, 4, 5, 6, o: 3, k: 3, p: 1),
    ConvolutionCase(1, 3, 4, 5, o: 4, k: 3, s: 2, p: 1, op: 1),  // upsampling with output padding
    ConvolutionCase(1, 4, 5, 4, o: 6, k: 4, s: 2, p: 1),  // 4x4 stride 2 (exact 2x)
    ConvolutionCase(1, 4, 3, 4, o: 4, k: 3, s: 2, op: 1),  // output padding beyond the padding
    ConvolutionCase(1, 6, 4, 4, o: 4, k: 3, p: 1, d: 2, g: 2),  // dilation + groups
    ConvolutionCase(1, 4, 4, 3, o: 4, k: 3, d: 2, op: 1),  // output padding below the dilation
    ConvolutionCase(2, 5, 4, 3, o: 2, k: 1),  // 1x1
    ConvolutionCase(1, 16, 6, 5, o: 32, k: 3, s: 2, p: 1, op: 1),  // blocked-friendly channels
    ConvolutionCase(1, 2, 3, 1500, o: 2, k: 3, s: 2, p: 1, op: 1),  // wide rows: several im2col row chunks
]

/// oneDNN, which the kernels use when the library works on this machine; the tests that need it
/// skip without it, except under CI, where they fail.
let oneDNN = Prerequisite(
    "oneDNN (libdnnl)", isPresent: ConvolutionBackend.isOneDNNAvailable,
    hint: "make deps installs libdnnl-dev; the library did not create a CPU engine")

/// The backends to check: oneDNN's two layouts when it runs tests (under CI without oneDNN their
/// cases then fail: `expectOneDNNImplementation` finds no primitive), im2col and Winograd.
let convolutionBackends: [ConvolutionBackend] =
    (oneDNN.runsTests ? [.oneDNN(blockedLayout: true), .oneDNN(blockedLayout: false)] : []) + [.im2col, .winograd]

/// Random inputs for a case: x, weight (conv or transposed layout), bias, and an output gradient.
func convolutionInputs(_ t: ConvolutionCase, transposed: Bool, seed: UInt64) -> (
    x: Tensor, weight: Tensor, bias: Tensor, dOut: Tensor
) {
    var generator = SplitMix64(seed: seed)
    let p = t.parameters
    let x = Tensor.uniform([t.n, t.c, t.h, t.w], low: -1, high: 1, generator: &generator)
    let weightShape = transposed ? [t.c, t.o / p.groups, t.k, t.k] : [t.o, t.c / p.groups, t.k, t.k]
    let weight = Tensor.uniform(weightShape, low: -1, high: 1, generator: &generator)
    let bias = Tensor.uniform([t.o], low: -1, high: 1, generator: &generator)
    let outShape =
        transposed
        ? ReferenceConvolution.transposedShape(x, weight, p)
        : ReferenceConvolution.conv2d(x, weight: weight, bias: nil, p).shape
    let dOut = Tensor.uniform(outShape, low: -1, high: 1, generator: &generator)
    return (x, weight, bias, dOut)
}

@Suite struct ConvolutionKernelTests {
    @Test(arguments: unfriendlyConvolutions)
    func convolutionBackendsMatchNaiveLoops(_ t: ConvolutionCase) {
        let (x, weight, bias, dOut) = convolutionInputs(t, transposed: false, seed: 11)
        let p = t.parameters
        let expected = ReferenceConvolution.conv2d(x, weight: weight, bias: bias, p)
        let (edx, edw, edb) = ReferenceConvolution.conv2dBackward(dOut, x: x, weight: weight, p)
        let g = ConvolutionGeometry(
            batch: t.n, inputChannels: t.c, inputHeight: t.h, inputWidth: t.w, outputChannels: t.o, kernelSize: t.k,
            stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups)
        #expect([g.batch, g.outputChannels, g.outputHeight, g.outputWidth] == expected.shape)
        for backend in convolutionBackends {
            expectOneDNNImplementation(g, backend)
            var out = [Float](repeating: .nan, count: g.outputCount)
            // Backward accumulates: start every gradient at 1 and expect reference + 1.
            var dx = [Float](repeating: 1, count: g.inputCount)
            var dw = [Float](repeating: 1, count: g.weightCount)
            var db = [Float](repeating: 1, count: t.o)
            convolutionForward(
                output: &out, input: x.data, weight: weight.data, bias: bias.data, geometry: g, training: true,
                backend: backend)
            convolutionBackward(
                dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dOut.data, input: x.data, weight: weight.data,
                geometry: g, backend: backend)
            expectClose(out, expected.data, "\(backend) forward")
            expectClose(dx, edx.data.map { $0 + 1 }, "\(backend) dInput")
            expectClose(dw, edw.data.map { $0 + 1 }, "\(backend) dWeight")
            expectClose(db, edb.data.map { $0 + 1 }, "\(backend) dBias")

            // Forward accumulation (used by the transposed conv's backward), and backward overwrite.
            convolutionForward(
                output: &out, input: x.data, weight: weight.data, bias: nil, geometry: g, accumulate: true,
                backend: backend)
            let withoutBias = ReferenceConvolution.conv2d(x, weight: weight, bias: nil, p).data
            expectClose(out, zip(expected.data, withoutBias).map { $0 + $1 }, "\(backend) forward accumulate")
            convolutionBackward(
                dInput: &dx, dWeight: nil, dBias: &db, dOutput: dOut.data, input: nil, weight: weight.data, geometry: g,
                accumulate: false, backend: backend)
            expectClose(dx, edx.data, "\(backend) dInput overwrite")
            expectClose(db, edb.data, "\(backend) dBias alone")
        }
    }

    @Test(arguments: unfriendlyTransposedConvolutions)
    func transposedBackendsMatchNaiveLoops(_ t: ConvolutionCase) {
        let (x, weight, bias, dOut) = convolutionInputs(t, transposed: true, seed: 12)
        let p = t.parameters
        let expected = ReferenceConvolution.convTranspose2d(x, weight: weight, bias: bias, p)
        let (edx, edw, edb) = ReferenceConvolution.convTranspose2dBackward(dOut, x: x, weight: weight, p)
        let g = ConvolutionGeometry(
            batch: t.n, inputChannels: t.o, inputHeight: expected.shape[2], inputWidth: expected.shape[3],
            outputChannels: t.c,
            kernelSize: t.k, stride: p.stride, padding: p.padding, dilation: p.dilation, groups: p.groups,
            outputHeight: t.h, outputWidth: t.w)
        for backend in convolutionBackends {
            expectOneDNNImplementation(g, backend)
            var out = [Float](repeating: .nan, count: expected.count)
            var dx = [Float](repeating: 1, count: x.count)
            var dw = [Float](repeating: 1, count: weight.count)
            var db = [Float](repeating: 1, count: t.o)
            transposedConvolutionForward(
                output: &out, input: x.data, weight: weight.data, bias: bias.data, geometry: g, backend: backend)
            transposedConvolutionBackward(
                dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dOut.data, input: x.data, weight: weight.data,
                geometry: g, backend: backend)
            expectClose(out, expected.data, "\(backend) transposed forward")
            expectClose(dx, edx.data.map { $0 + 1 }, "\(backend) transposed dInput")
            expectClose(dw, edw.data.map { $0 + 1 }, "\(backend) transposed dWeight")
            expectClose(db, edb.data.map { $0 + 1 }, "\(backend) transposed dBias")
            transposedConvolutionBackward(
                dInput: &dx, dWeight: &dw, dBias: &db, dOutput: dOut.data, input: x.data, weight: weight.data,
                geometry: g,
                accumulate: false, backend: backend)
            expectClose(dx, edx.data, "\(backend) transposed dInput overwrite")
            expectClose(dw, edw.data, "\(backend) transposed dWeight overwrite")
            expectClose(db, edb.data, "\(backend) transposed dBias overwrite")
        }
    }

    @Test func winogradInSeveralTileBlocksMatchesNaiveLoops() {
        let t = ConvolutionCase(2, 16, 13, 10, o: 16, k: 3, p: 1)
        let (x, weight, bias, dOut) = convolutionInputs(t, transposed: false, seed: 13)
        let expected = ReferenceConvolution.conv2d(x, weight: weight, bias: bias, t.parameters)
        let (_, expectedDw, _) = ReferenceConvolution.conv2dBackward(dOut, x: x, weight: weight, t.parameters)
        let g = ConvolutionGeometry(
            batch: 2, inputChannels: 16, inputHeight: 13, inputWidth: 10, outputChannels: 16, kernelSize: 3, padding: 1)
        #expect(winogradSupports(g))
        for rows in [1, 2, 4] {
            var out = [Float](repeating: .nan, count: g.outputCount)
            winogradConvolutionForward(
                output: &out, input: x.data, weight: weight.data, bias: bias.data, geometry: g, tileRowsPerBlock: rows)
            expectClose(out, expected.data, "Winograd, \(rows) tile rows per block")
            var dw = [Float](repeating: 1, count: g.weightCount)
            winogradConvolutionBackwardWeights(
                dWeight: &dw, dOutput: dOut.data, input: x.data, geometry: g, accumulate: true, tileRowsPerBlock: rows)
            expectClose(dw, expectedDw.data.map { $0 + 1 }, "Winograd dWeight, \(rows) tile rows per block")
        }
    }

    /// The transforms on SIMD4 lanes of four tiles and the whole-row loops do the same arithmetic in
    /// the same order: forward (= and +=), input and weight gradients are equal bit for bit, on tile
    /// rows of 1 to 9 tiles (short groups of lanes, columns and rows beyond the output, paddings 0-2,
    /// several tile blocks), and both match the naive loops.
    @Test(arguments: [
        ConvolutionCase(2, 16, 13, 9, o: 16, k: 3, p: 1), ConvolutionCase(1, 16, 7, 22, o: 17, k: 3, p: 2),
        ConvolutionCase(1, 18, 6, 6, o: 16, k: 3, p: 0), ConvolutionCase(3, 16, 16, 16, o: 20, k: 3, p: 1),
        ConvolutionCase(1, 16, 34, 35, o: 16, k: 3, p: 1),
    ])
    func winogradTransformsOnLanesEqualTheRowLoops(_ t: ConvolutionCase) {
        let (x, weight, bias, dOut) = convolutionInputs(t, transposed: false, seed: 29)
        let expected = ReferenceConvolution.conv2d(x, weight: weight, bias: bias, t.parameters)
        let (expectedDx, expectedDw, _) = ReferenceConvolution.conv2dBackward(dOut, x: x, weight: weight, t.parameters)
        let g = ConvolutionGeometry(
            batch: t.n, inputChannels: t.c, inputHeight: t.h, inputWidth: t.w, outputChannels: t.o, kernelSize: 3,
            padding: t.parameters.padding)
        #expect(winogradSupportsBackwardData(g))
        var results: [[[Float]]] = []
        for lanes in [WinogradLanes(all: false), WinogradLanes(all: true)] {
            for rows in [1, 3] {
                var out = [Float](repeating: .nan, count: g.outputCount)
                winogradConvolutionForward(
                    output: &out, input: x.data, weight: weight.data, bias: bias.data, geometry: g,
                    tileRowsPerBlock: rows,
                    cachesTransformedWeights: false, lanes: lanes)
                var accumulated = [Float](repeating: 0.5, count: g.outputCount)
                winogradConvolutionForward(
                    output: &accumulated, input: x.data, weight: weight.data, bias: bias.data, geometry: g,
                    accumulate: true, tileRowsPerBlock: rows, cachesTransformedWeights: false, lanes: lanes)
                var dx = [Float](repeating: 1, count: g.inputCount)
                winogradConvolutionBackwardData(
                    dInput: &dx, dOutput: dOut.data, weight: weight.data, geometry: g, accumulate: true, lanes: lanes)
                var dw = [Float](repeating: 0, count: g.weightCount)
                winogradConvolutionBackwardWeights(
                    dWeight: &dw, dOutput: dOut.data, input: x.data, geometry: g, accumulate: false,
                    tileRowsPerBlock: rows, lanes: lanes)
                expectClose(out, expected.data, "forward, lanes \(lanes.input), \(rows) tile rows per block")
                expectClose(dx, expectedDx.data.map { $0 + 1 }, "dInput, lanes \(lanes.input)")
                expectClose(dw, expectedDw.data, "dWeight, lanes \(lanes.input), \(rows) tile rows per block")
                results.append([out, accumulated, dx, dw])
            }
        }
        for (index, name) in ["forward", "forward +=", "dInput", "dWeight"].enumerated() {
            let (rowLoops, onLanes) = (results[0][index] + results[1][index], results[2][index] + results[3][index])
            let equal = rowLoops.map(\.bitPattern) == onLanes.map(\.bitPattern)
            #expect(equal, "\(name): lanes and row loops differ")
        }
    }

    /// Transformed weights are reused across calls only while the weight values are unchanged: a
    /// weight updated in place (as an optimizer does, same address) gets a fresh transform.
    @Test func winogradWeightCacheFollowsInPlaceWeightUpdates() {
        let g = ConvolutionGeometry(
            batch: 1, inputChannels: 16, inputHeight: 12, inputWidth: 9, outputChannels: 24, kernelSize: 3, padding: 1)
        var generator = SplitMix64(seed: 5)
        let x = Tensor.uniform([1, 16, 12, 9], low: -1, high: 1, generator: &generator).data
        let initial = Tensor.uniform([24, 16, 3, 3], low: -0.2, high: 0.2, generator: &generator).data
        let weight = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)  // one address throughout
        defer { weight.deallocate() }
        weight.update(from: initial, count: g.weightCount)
        func forward(caching: Bool) -> [Float] {
            var out = [Float](repeating: .nan, count: g.outputCount)
            winogradConvolutionForward(
                output: &out, input: x, weight: weight, bias: nil, geometry: g, cachesTransformedWeights: caching)
            return out
        }
        let uncached = forward(caching: false)
        let first = forward(caching: true), second = forward(caching: true)
        let reused = first == uncached && second == uncached  // compared as Bool: no array dump on failure
        #expect(reused, "cached transform differs from a fresh one")
        for step in 1...3 {
            weight[7 * step] += 0.25  // one value, in place
            weight[g.weightCount - step] -= 0.125
            let fresh = forward(caching: false), cached = forward(caching: true)
            let (followsUpdate, changed) = (cached == fresh, cached != uncached)
            #expect(followsUpdate, "step \(step): stale transformed weights after an in-place update")
            #expect(changed, "step \(step): the update did not change the output")
        }
        let reference = ReferenceConvolution.conv2d(
            Tensor(shape: [1, 16, 12, 9], data: x),
            weight: Tensor(
                shape: [24, 16, 3, 3], data: Array(UnsafeBufferPointer(start: weight, count: g.weightCount))),
            bias: nil, ConvolutionCase(1, 16, 12, 9, o: 24, k: 3, p: 1).parameters)
        expectClose(forward(caching: true), reference.data, "cached Winograd after updates vs naive loops")
    }

    /// Winograd F(4x4, 3x3) rounds more than direct convolution; on a realistic layer its error stays
    /// below 1e-5 of the output's largest magnitude (forward, input and weight gradients; measured worst
    /// 0.92e-5 over the instruction-set settings of `make test-isa`), checked with a 4x margin.
    @Test func winogradAccuracyOnA64ChannelLayer() {
        let g = ConvolutionGeometry(
            batch: 1, inputChannels: 64, inputHeight: 30, inputWidth: 33, outputChannels: 64, kernelSize: 3, padding: 1)
        var generator = SplitMix64(seed: 21)
        let x = Tensor.uniform([1, 64, 30, 33], low: -1, high: 1, generator: &generator).data
        let w = Tensor.uniform([64, 64, 3, 3], low: -0.06, high: 0.06, generator: &generator).data  // ~ Kaiming scale
        let dOut = Tensor.uniform([1, 64, 30, 33], low: -1, high: 1, generator: &generator).data
        let direct: ConvolutionBackend = ConvolutionBackend.isOneDNNAvailable ? .oneDNN(blockedLayout: true) : .im2col
        var expected = [Float](repeating: 0, count: g.outputCount), actual = expected
        convolutionForward(output: &expected, input: x, weight: w, bias: nil, geometry: g, backend: direct)
        convolutionForward(output: &actual, input: x, weight: w, bias: nil, geometry: g, backend: .winograd)
        var expectedDx = [Float](repeating: 0, count: g.inputCount), actualDx = expectedDx
        var expectedDw = [Float](repeating: 0, count: g.weightCount), actualDw = expectedDw
        convolutionBackward(
            dInput: &expectedDx, dWeight: &expectedDw, dBias: nil, dOutput: dOut, input: x, weight: w, geometry: g,
            backend: direct)
        convolutionBackward(
            dInput: &actualDx, dWeight: &actualDw, dBias: nil, dOutput: dOut, input: x, weight: w, geometry: g,
            backend: .winograd)
        for (label, a, e) in [
            ("forward", actual, expected), ("dInput", actualDx, expectedDx), ("dWeight", actualDw, expectedDw),
        ] {
            let scale = e.map(abs).max() ?? 1
            let comparison = compare(
                a, e, relativeTolerance: 0, absoluteTolerance: 4e-5 * scale, label: "Winograd \(label) (scale \(scale))"
            )
            #expect(comparison.passed, "\(comparison)")
        }
    }

    @Test(.enabled(if: oneDNN.runsTests, Comment(rawValue: oneDNN.skipMessage)))
    func oneDNNPicksAnImplementationForTheBenchmarkShape() throws {
        try oneDNN.require()
        let g = ConvolutionGeometry(
            batch: 1, inputChannels: 64, inputHeight: 16, inputWidth: 16, outputChannels: 64, kernelSize: 3, padding: 1)
        for pass in ["inference", "training", "backwardData", "backwardWeights"] {
            let name = oneDNNConvolutionImplementation(geometry: g, pass: pass)
            #expect(name != nil && !(name ?? "").hasPrefix("ref"), "\(pass): \(name ?? "none")")
        }
    }
}

func expectClose(
    _ actual: [Float], _ expected: [Float], _ label: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    // 2.5e-4: 4x the worst measured (Winograd accumulate, 0.51 of 1e-4 under ONEDNN_MAX_CPU_ISA=SSE41 +
    // OPENBLAS_CORETYPE=Prescott; docs/robustness.md "Tolerances from measured spread").
    let comparison = compare(actual, expected, relativeTolerance: 2.5e-4, absoluteTolerance: 2.5e-4, label: label)
    #expect(comparison.passed, "\(comparison)", sourceLocation: sourceLocation)
}

/// oneDNN falls back to im2col silently; the tests insist it had a primitive for every pass,
/// except where oneDNN 2.6 rejects the geometry: trailing padding at or below -stride (unused
/// trailing input rows; only a transposed conv with outputPadding >= stride gets there).
func expectOneDNNImplementation(
    _ g: ConvolutionGeometry, _ backend: ConvolutionBackend, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard case .oneDNN(let blocked) = backend, g.paddingBottom + g.stride > 0, g.paddingRight + g.stride > 0 else {
        return
    }
    for pass in ["inference", "training", "backwardData", "backwardWeights"] {
        let name = oneDNNConvolutionImplementation(geometry: g, pass: pass, blockedLayout: blocked)
        #expect(
            name != nil, "no oneDNN \(pass) primitive for \(g) (blocked: \(blocked))", sourceLocation: sourceLocation)
    }
}
