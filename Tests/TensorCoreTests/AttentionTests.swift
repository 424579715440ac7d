import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// The fused token attention: (A) hand-computed values, (B) finite differences, the tiled kernels
/// against the unfused composition (matmul, softmax) with many small tiles, (C) PyTorch parity.
@Suite struct AttentionTests {
    /// The unfused reference built from parity-tested ops: softmax(q^T k^T scale + bias) v, channel-major.
    static func composed(_ q: Tensor, _ k: Tensor, _ v: Tensor, scale: Float, bias: Tensor?) -> Tensor {
        let (n, tokens) = (q.shape[0], k.shape[2])
        var logits = matmul(q.permuted([0, 1, 3, 2]), k.permuted([0, 1, 3, 2])) * scale  // N h S T
        if let bias { logits = logits + bias.reshaped([n, 1, 1, tokens]) }
        return matmul(logits.softmax(axis: -1), v).permuted([0, 1, 3, 2])
    }

    // MARK: A. hand cases

    @Test func twoPositionsTwoTokens() {
        // logits[s, t] = q[s] k[t] with q = [0, ln 3], k = [1, 0]: P = [[1/2, 1/2], [3/4, 1/4]]; v = [2, 6]
        let q = Tensor(shape: [1, 1, 1, 2], data: [0, Float(Foundation.log(3.0))], requiresGrad: true)
        let k = Tensor(shape: [1, 1, 2, 1], data: [1, 0])
        let v = Tensor(shape: [1, 1, 2, 1], data: [2, 6], requiresGrad: true)
        let out = tokenAttention(queries: q, keys: k, values: v, scale: 1)
        let expected = compare(
            out, Tensor(shape: [1, 1, 1, 2], data: [4, 3]), relativeTolerance: 1e-6, absoluteTolerance: 1e-6,
            label: "out")
        #expect(expected.passed, "\(expected)")
        out.sum().backward()
        // d v[t] = Σ_s P[s, t]
        let dv = compare(
            v.gradTensor!, Tensor(shape: [1, 1, 2, 1], data: [1.25, 0.75]), relativeTolerance: 1e-6,
            absoluteTolerance: 1e-6, label: "dv")
        #expect(dv.passed, "\(dv)")
        // with bias [0, ln 3]: P = [[1/4, 3/4], [1/2, 1/2]]
        let bias = Tensor(shape: [1, 2], data: [0, Float(Foundation.log(3.0))])
        let biased = withoutGradient { tokenAttention(queries: q, keys: k, values: v, scale: 1, bias: bias) }
        let withBias = compare(
            biased, Tensor(shape: [1, 1, 1, 2], data: [5, 4]), relativeTolerance: 1e-6, absoluteTolerance: 1e-6,
            label: "biased")
        #expect(withBias.passed, "\(withBias)")
    }

    // MARK: B. finite differences and the tiled kernels

    @Test(arguments: [
        ([1, 1, 2, 5], 3, 2, false), ([2, 2, 3, 7], 4, 3, true), ([1, 3, 1, 1], 1, 1, false),
        ([1, 2, 4, 9], 6, 5, true),
    ])
    func gradientsMatchFiniteDifferences(queryShape: [Int], tokens: Int, valueWidth: Int, withBias: Bool) {
        var generator = SplitMix64(seed: 31)
        let (n, heads, width) = (queryShape[0], queryShape[1], queryShape[2])
        let q = Tensor.uniform(queryShape, low: -1, high: 1, generator: &generator)
        let k = Tensor.uniform([n, heads, tokens, width], low: -1, high: 1, generator: &generator)
        let v = Tensor.uniform([n, heads, tokens, valueWidth], low: -1, high: 1, generator: &generator)
        let bias = withBias ? Tensor.uniform([n, tokens], low: -2, high: 0, generator: &generator) : nil
        let report = checkGradients(
            of: { tokenAttention(queries: $0[0], keys: $0[1], values: $0[2], scale: 0.7, bias: bias) }, at: [q, k, v])
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [1, 5, 16])
    func tiledKernelsMatchTheComposition(tileSize: Int) {
        var generator = SplitMix64(seed: 37)
        let geometry = TokenAttentionGeometry(
            batch: 2, heads: 3, queryWidth: 4, valueWidth: 3, positions: 37, tokens: 9, tileSize: tileSize)
        let q = Tensor.uniform([2, 3, 4, 37], low: -2, high: 2, generator: &generator, requiresGrad: true)
        let k = Tensor.uniform([2, 3, 9, 4], low: -2, high: 2, generator: &generator, requiresGrad: true)
        let v = Tensor.uniform([2, 3, 9, 3], low: -1, high: 1, generator: &generator, requiresGrad: true)
        let bias = Tensor.uniform([2, 9], low: -3, high: 0, generator: &generator)
        let dOut = Tensor.uniform([2, 3, 3, 37], low: -1, high: 1, generator: &generator)
        let reference = Self.composed(q, k, v, scale: 0.5, bias: bias)
        reference.backward(seed: dOut.data)

        var output = [Float](repeating: .nan, count: 2 * 3 * 3 * 37)
        var logSumExp = [Float](repeating: .nan, count: 2 * 3 * 37)
        var dq = [Float](repeating: .nan, count: q.count)
        var dk = [Float](repeating: 0, count: k.count), dv = [Float](repeating: 0, count: v.count)
        tokenAttentionForward(
            output: &output, logSumExp: &logSumExp, queries: q.data, keys: k.data, values: v.data, bias: bias.data,
            scale: 0.5,
            geometry: geometry)
        tokenAttentionBackward(
            dQueries: &dq, dKeys: &dk, dValues: &dv, dOutput: dOut.data, queries: q.data, keys: k.data, values: v.data,
            bias: bias.data, logSumExp: logSumExp, scale: 0.5, geometry: geometry)
        for (label, actual, expected) in [
            ("forward", output, reference.data), ("dq", dq, q.grad!), ("dk", dk, k.grad!), ("dv", dv, v.grad!),
        ] {
            let c = compare(
                Tensor(shape: [actual.count], data: actual), Tensor(shape: [expected.count], data: expected),
                relativeTolerance: 1e-5, absoluteTolerance: 1e-5, label: "\(label) tile \(tileSize)")
            #expect(c.passed, "\(c)")
        }
    }

    @Test func theOpMatchesTheCompositionWithoutRecording() {
        var generator = SplitMix64(seed: 41)
        let q = Tensor.uniform([1, 2, 3, 300], low: -2, high: 2, generator: &generator)
        let k = Tensor.uniform([1, 2, 200, 3], low: -2, high: 2, generator: &generator)
        let v = Tensor.uniform([1, 2, 200, 5], low: -1, high: 1, generator: &generator)
        let fused = withoutGradient { tokenAttention(queries: q, keys: k, values: v, scale: 0.6) }
        let c = compare(
            fused, Self.composed(q, k, v, scale: 0.6, bias: nil), relativeTolerance: 1e-5, absoluteTolerance: 1e-6,
            label: "no-grad")
        #expect(c.passed, "\(c)")
    }

    // MARK: C. PyTorch parity

    @Test func matchesPyTorch() throws {
        // Scripts/fixtures/ops_attention.py: softmax(q^T k^T * scale + bias) v, transposed back
        let file = try Fixtures.load("ops_attention/token_attention.safetensors")
        for fixtureCase in try file.cases() {
            let q = try file.tensor("queries", of: fixtureCase)
            let k = try file.tensor("keys", of: fixtureCase)
            let v = try file.tensor("values", of: fixtureCase)
            let bias = file.tensors["\(fixtureCase.name)/bias"] != nil ? try file.tensor("bias", of: fixtureCase) : nil
            for t in [q, k, v] { t.requiresGrad = true }
            let out = tokenAttention(
                queries: q, keys: k, values: v, scale: 1 / Float(q.shape[2]).squareRoot(), bias: bias)
            let forward = compare(
                out, try file.tensor("output", of: fixtureCase), relativeTolerance: 1e-5, absoluteTolerance: 1e-5,
                label: "\(fixtureCase) forward")
            #expect(forward.passed, "\(forward)")
            out.backward(seed: try file.tensor("grad_output", of: fixtureCase).data)
            for (name, input) in [("queries", q), ("keys", k), ("values", v)] {
                let gradient = compare(
                    input.gradTensor!, try file.tensor("grad_\(name)", of: fixtureCase), relativeTolerance: 1e-4,
                    absoluteTolerance: 1e-5, label: "\(fixtureCase) grad \(name)")
                #expect(gradient.passed, "\(gradient)")
            }
        }
    }

    // MARK: preconditions

    @Test func mismatchedKeysNameTheShapes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = tokenAttention(
                queries: Tensor.zeros([1, 2, 3, 5]), keys: Tensor.zeros([1, 2, 4, 2]),
                values: Tensor.zeros([1, 2, 4, 1]), scale: 1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("[1, 2, 3, 5]") && message.contains("[1, 2, 4, 2]"), "\(message)")
    }
}
