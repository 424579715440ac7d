import GKNetTensorCore
import GKNetTestSupport
import Testing

/// reshape, permute/transpose, slice, pad, concatenate, split: hand cases, naive twins for permute
/// and pad, finite differences, PyTorch parity.
@Suite struct MovementTests {
    static func arange(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.elementCount).map(Float.init), requiresGrad: true)
    }

    // MARK: (A) hand-computed cases

    @Test func reshapeInfersOneDimension() {
        let x = Self.arange([2, 3, 4])
        let y = x.reshaped([4, -1])
        #expect(y.shape == [4, 6] && y.data == x.data)
        #expect(x.reshaped([-1]).shape == [24])
        (y * Tensor(shape: [4, 6], data: (0..<24).map(Float.init))).sum().backward()
        #expect(x.grad == (0..<24).map(Float.init))
    }

    @Test func transposeAndPermute() {
        let x = Self.arange([2, 3])
        let t = x.transposed(0, 1)
        #expect(t.shape == [3, 2] && t.data == [0, 3, 1, 4, 2, 5])
        let y = Self.arange([2, 3, 4]).permuted([2, 0, 1])
        #expect(y.shape == [4, 2, 3])
        #expect(Array(y.data.prefix(6)) == [0, 4, 8, 12, 16, 20])
        #expect(Self.arange([2, 3, 4]).permuted([0, 1, 2]).data == (0..<24).map(Float.init))
        (t * Tensor(shape: [3, 2], data: [1, 2, 3, 4, 5, 6])).sum().backward()
        #expect(x.grad == [1, 3, 5, 2, 4, 6])
    }

    @Test func sliceConcatenateSplit() {
        let x = Self.arange([2, 4])
        let s = x.sliced(axis: 1, range: 1..<3)
        #expect(s.shape == [2, 2] && s.data == [1, 2, 5, 6])
        s.sum().backward()
        #expect(x.grad == [0, 1, 1, 0, 0, 1, 1, 0])

        let a = Self.arange([2, 1])
        let b = Self.arange([2, 2])
        let c = Tensor.concatenated([a, b], axis: 1)
        #expect(c.shape == [2, 3] && c.data == [0, 0, 1, 1, 2, 3])
        (c * Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])).sum().backward()
        #expect(a.grad == [1, 4] && b.grad == [2, 3, 5, 6])

        let pieces = Self.arange([5, 2]).split(sizes: [2, 0, 3], axis: 0)
        #expect(pieces.map(\.shape) == [[2, 2], [0, 2], [3, 2]])
        #expect(pieces[2].data == [4, 5, 6, 7, 8, 9])
    }

    @Test func zeroAndReflectPadding() {
        let x = Tensor(shape: [4], data: [1, 2, 3, 4], requiresGrad: true)
        #expect(x.padded([(1, 2)]).data == [0, 1, 2, 3, 4, 0, 0])
        let r = x.padded([(2, 3)], mode: .reflect)
        #expect(r.data == [3, 2, 1, 2, 3, 4, 3, 2, 1])
        r.sum().backward()
        // sources of the 9 outputs are [2, 1, 0, 1, 2, 3, 2, 1, 0]: the gradient counts them
        #expect(x.grad == [2, 3, 3, 1])
        let m = Self.arange([2, 3]).padded([(1, 0), (0, 1)], mode: .reflect)
        #expect(m.shape == [3, 4] && m.data == [3, 4, 5, 4, 0, 1, 2, 1, 3, 4, 5, 4])
    }

    // MARK: kernels against naive loops

    /// Every permutation of a rank-4 shape with a size-1 axis and odd sizes, against index math.
    @Test func permuteMatchesNaiveIndexing() {
        let shape = [2, 3, 1, 5]
        var generator = SplitMix64(seed: 5)
        let x = Tensor.normal(shape, generator: &generator)
        let strides = shape.rowMajorStrides
        for axes in permutations(of: [0, 1, 2, 3]) {
            let y = x.permuted(axes)
            let outShape = axes.map { shape[$0] }
            var expected: [Float] = []
            for o in 0..<x.count {
                var remainder = o
                var offset = 0
                for i in stride(from: 3, through: 0, by: -1) {
                    offset += (remainder % outShape[i]) * strides[axes[i]]
                    remainder /= outShape[i]
                }
                expected.append(x.data[offset])
            }
            #expect(y.shape == outShape && y.data == expected, "permutation \(axes)")
            // Permuting back gives the input (the backward uses the same walk in reverse).
            var inverse = [Int](repeating: 0, count: 4)
            for (i, a) in axes.enumerated() { inverse[a] = i }
            #expect(y.permuted(inverse).data == x.data)
        }
    }

    @Test func padMatchesNaiveIndexing() {
        var generator = SplitMix64(seed: 6)
        let shape = [3, 4, 5]
        let x = Tensor.normal(shape, generator: &generator)
        let paddings: [[(before: Int, after: Int)]] = [
            [(0, 0), (0, 0), (0, 0)], [(1, 0), (0, 3), (2, 2)], [(0, 0), (3, 3), (4, 1)], [(2, 2), (0, 0), (0, 0)],
            [(0, 1), (1, 0), (0, 0)],
        ]
        for padding in paddings {
            for mode in [PaddingMode.zero, .reflect] {
                let y = x.padded(padding, mode: mode)
                let outShape = zip(shape, padding).map { $0 + $1.before + $1.after }
                var expected: [Float] = []
                for a in 0..<outShape[0] {
                    for b in 0..<outShape[1] {
                        for c in 0..<outShape[2] {
                            let source = zip([a, b, c], zip(shape, padding)).map { o, sp -> Int? in
                                let i = o - sp.1.before
                                if i >= 0 && i < sp.0 { return i }
                                if mode == .zero { return nil }
                                return i < 0 ? -i : 2 * (sp.0 - 1) - i
                            }
                            if source.contains(where: { $0 == nil }) {
                                expected.append(0)
                                continue
                            }
                            expected.append(x.data[(source[0]! * 4 + source[1]!) * 5 + source[2]!])
                        }
                    }
                }
                #expect(y.shape == outShape && y.data == expected, "\(mode) \(padding)")
            }
        }
    }

    /// Large enough for several threads: chunk boundaries must not shift rows.
    @Test func largeTensorsMatchNaiveAndPiecewiseResults() {
        var generator = SplitMix64(seed: 8)
        let x = Tensor.normal([3, 70, 1001], generator: &generator)
        let y = x.permuted([2, 0, 1])
        var mismatches = 0
        for c in 0..<1001 {
            for a in 0..<3 {
                for b in 0..<70 where y.data[(c * 3 + a) * 70 + b] != x.data[(a * 70 + b) * 1001 + c] {
                    mismatches += 1
                }
            }
        }
        #expect(y.shape == [1001, 3, 70] && mismatches == 0)
        #expect(y.permuted([1, 2, 0]).data == x.data)

        let images = Tensor.normal([40, 3, 30, 31], generator: &generator)
        images.requiresGrad = true
        let padding: [(before: Int, after: Int)] = [(0, 0), (0, 0), (2, 1), (1, 3)]
        let padded = images.padded(padding, mode: .reflect)
        let seed = Tensor.normal(padded.shape, generator: &generator)
        (padded * seed).sum().backward()
        for n in [0, 17, 39] {
            let piece = images.detached().sliced(axis: 0, range: n..<(n + 1))
            piece.requiresGrad = true
            let piecePadded = piece.padded(padding, mode: .reflect)
            #expect(piecePadded.data == padded.sliced(axis: 0, range: n..<(n + 1)).data, "sample \(n)")
            (piecePadded * seed.sliced(axis: 0, range: n..<(n + 1))).sum().backward()
            #expect(piece.grad! == Array(images.grad![(n * 2790)..<((n + 1) * 2790)]), "sample \(n) gradient")
        }
    }

    // MARK: (B) finite differences

    static let cases: [(name: String, shapes: [[Int]], op: @Sendable ([Tensor]) -> Tensor)] = [
        ("reshape", [[3, 5]], { $0[0].reshaped([5, -1, 1]) }),
        ("permute", [[2, 3, 5]], { $0[0].permuted([2, 0, 1]) }),
        ("permute nhwc", [[2, 3, 1, 5]], { $0[0].permuted([0, 2, 3, 1]) }),
        ("transpose", [[3, 7]], { $0[0].transposed(-1, 0) }),
        ("slice", [[3, 7, 2]], { $0[0].sliced(axis: 1, range: 2..<5) }),
        ("pad zero", [[2, 3, 5]], { $0[0].padded([(0, 0), (1, 2), (3, 1)]) }),
        ("pad reflect", [[2, 3, 5]], { $0[0].padded([(1, 0), (2, 2), (1, 3)], mode: .reflect) }),
        ("concatenate", [[3, 2, 5], [3, 1, 5], [3, 4, 5]], { Tensor.concatenated($0, axis: 1) }),
        ("concatenate last", [[3, 2], [3, 5]], { Tensor.concatenated($0, axis: -1) }),
        (
            "split", [[7, 3]],
            { x in
                let parts = x[0].split(sizes: [2, 4, 1], axis: 0)
                return Tensor.concatenated([parts[2] * 3, parts[0], parts[1] * -2], axis: 0)
            }
        ),
    ]

    @Test func gradientsMatchFiniteDifferences() {
        for (index, testCase) in Self.cases.enumerated() {
            var generator = SplitMix64(seed: UInt64(300 + index))
            let inputs = testCase.shapes.map { Tensor.uniform($0, low: -2, high: 2, generator: &generator) }
            let report = checkGradients(of: testCase.op, at: inputs)
            #expect(report.passed, "\(testCase.name): \(report)")
        }
    }

    // MARK: (C) PyTorch parity

    static let parityCases: [String: @Sendable (Tensor) -> Tensor] = [
        "reshape": { $0.reshaped([6, -1]) },
        "permute_0231": { $0.permuted([0, 2, 3, 1]) },
        "permute_3102": { $0.permuted([3, 1, 0, 2]) },
        "permute_1023": { $0.permuted([1, 0, 2, 3]) },
        "transpose_1_3": { $0.transposed(1, 3) },
        "slice_1": { $0.sliced(axis: 1, range: 1..<3) },
        "slice_3": { $0.sliced(axis: 3, range: 0..<4) },
        "slice_last": { $0.sliced(axis: -1, range: 2..<5) },
        "pad_zero": { $0.padded([(0, 0), (1, 2), (0, 1), (3, 0)]) },
        "pad_reflect_hw": { $0.padded([(0, 0), (0, 0), (2, 1), (1, 3)], mode: .reflect) },
        "pad_reflect_chw": { $0.padded([(0, 0), (1, 2), (1, 1), (2, 2)], mode: .reflect) },
    ]

    @Test(arguments: parityCases.keys.sorted())
    func matchesPyTorch(_ name: String) throws {
        let op = Self.parityCases[name]!
        try expectParity(file: "movement", case: name) { op($0[0]) }
    }

    @Test func concatenateMatchesPyTorch() throws {
        try expectParity(file: "movement", case: "concat_1", inputs: ["a", "b", "c"]) {
            Tensor.concatenated($0, axis: 1)
        }
        try expectParity(file: "movement", case: "concat_last", inputs: ["a", "b"]) {
            Tensor.concatenated($0, axis: -1)
        }
    }

    @Test func splitMatchesPyTorch() throws {
        let fixture = try Fixtures.load("ops_core/movement.safetensors")
        let x = try fixture.tensor("split_2.x")
        x.requiresGrad = true
        let pieces = x.split(sizes: [1, 3, 1], axis: 2)
        var loss: Tensor?
        for (i, piece) in pieces.enumerated() {
            let c = compare(piece, try fixture.tensor("split_2.out\(i)"), label: "split piece \(i)")
            #expect(c.passed, "\(c)")
            let term = (piece * (try fixture.tensor("split_2.seed\(i)"))).sum()
            loss = loss.map { $0 + term } ?? term
        }
        loss?.backward()
        let g = compare(
            x.gradTensor!, try fixture.tensor("split_2.dx"), relativeTolerance: 1e-4, absoluteTolerance: 1e-5,
            label: "split dx")
        #expect(g.passed, "\(g)")
    }
}

/// All orderings of `elements` (Heap's algorithm is overkill here: rank 4 has 24).
func permutations(of elements: [Int]) -> [[Int]] {
    guard elements.count > 1 else { return [elements] }
    return elements.indices.flatMap { i -> [[Int]] in
        var rest = elements
        let head = rest.remove(at: i)
        return permutations(of: rest).map { [head] + $0 }
    }
}
