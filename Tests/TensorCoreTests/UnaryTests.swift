import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Checks of the elementwise unary ops: (A) hand-computed values, (B) finite differences over
/// several shapes, (C) PyTorch parity from Tests/Fixtures/ops_core/unary.safetensors.
@Suite struct UnaryTests {
    typealias Op = @Sendable (Tensor) -> Tensor

    /// The ops under test, by fixture case name (Scripts/fixtures/ops_core.py `unary`).
    static let ops: [String: Op] = [
        "exp": { $0.exp() }, "log": { $0.log() }, "sqrt": { $0.sqrt() },
        "pow2": { $0.pow(2) }, "pow3": { $0.pow(3) }, "pow_half": { $0.pow(0.5) }, "pow_neg1_5": { $0.pow(-1.5) },
        "relu": { $0.relu() }, "leaky_relu": { $0.leakyRelu() }, "leaky_relu_0_2": { $0.leakyRelu(slope: 0.2) },
        "elu": { $0.elu() }, "elu_0_5": { $0.elu(alpha: 0.5) },
        "gelu": { $0.gelu() }, "gelu_tanh": { $0.gelu(approximation: .tanh) },
        "sigmoid": { $0.sigmoid() }, "tanh": { $0.tanh() }, "abs": { $0.abs() },
        "clamp": { $0.clamped(min: -0.5, max: 0.7) },
    ]
    /// Ops defined only for positive inputs.
    static let positiveOnly: Set = ["log", "sqrt", "pow_half", "pow_neg1_5"]
    /// Points where an op has a kink (finite differences must stay clear of them).
    static let kinks: [String: [Float]] = [
        "relu": [0], "leaky_relu": [0], "leaky_relu_0_2": [0], "elu": [0], "elu_0_5": [0], "abs": [0],
        "clamp": [-0.5, 0.7],
    ]

    // MARK: (A) hand-computed cases

    /// Forward values and the gradient of sum(out) for small inputs.
    func expectValues(_ op: (Tensor) -> Tensor, at input: [Float], output: [Float], gradient: [Float], _ label: String)
    {
        let x = Tensor(shape: [input.count], data: input, requiresGrad: true)
        let y = op(x)
        let forward = compare(
            y.data, output, relativeTolerance: 1e-6, absoluteTolerance: 1e-7, label: "\(label) forward")
        #expect(forward.passed, "\(forward)")
        y.sum().backward()
        let backward = compare(
            x.grad ?? [], gradient, relativeTolerance: 1e-6, absoluteTolerance: 1e-7, label: "\(label) gradient")
        #expect(backward.passed, "\(backward)")
    }

    @Test func handComputedValues() {
        let e = Float(M_E)
        expectValues({ $0.exp() }, at: [0, 1, -1], output: [1, e, 1 / e], gradient: [1, e, 1 / e], "exp")
        expectValues({ $0.log() }, at: [1, e, 0.5], output: [0, 1, -0.693_147_2], gradient: [1, 1 / e, 2], "log")
        expectValues({ $0.sqrt() }, at: [4, 9, 0.25], output: [2, 3, 0.5], gradient: [0.25, 1.0 / 6, 1], "sqrt")
        expectValues({ $0.pow(2) }, at: [2, -3], output: [4, 9], gradient: [4, -6], "pow 2")
        expectValues({ $0.pow(3) }, at: [2, -1], output: [8, -1], gradient: [12, 3], "pow 3")
        expectValues({ $0.pow(-1) }, at: [2, 4], output: [0.5, 0.25], gradient: [-0.25, -0.0625], "pow -1")
        expectValues({ $0.relu() }, at: [-1, 0, 2], output: [0, 0, 2], gradient: [0, 0, 1], "relu")
        expectValues(
            { $0.leakyRelu(slope: 0.1) }, at: [-2, 0, 3], output: [-0.2, 0, 3], gradient: [0.1, 0.1, 1], "leakyRelu")
        expectValues({ $0.elu() }, at: [-1, 0, 2], output: [1 / e - 1, 0, 2], gradient: [1 / e, 1, 1], "elu")
        expectValues({ $0.elu(alpha: 2) }, at: [-1], output: [2 * (1 / e - 1)], gradient: [2 / e], "elu alpha 2")
        // Phi(1) = 0.841344746, phi(1) = 0.241970725
        expectValues(
            { $0.gelu() }, at: [0, 1, -1], output: [0, 0.841_344_7, -0.158_655_3],
            gradient: [0.5, 1.083_315_5, -0.083_315_5], "gelu")
        // 0.5 (1 + tanh(0.7978845608 * 1.044715)) = 0.8411919906
        expectValues(
            { $0.gelu(approximation: .tanh) }, at: [0, 1], output: [0, 0.841_192], gradient: [0.5, 1.082_964_1],
            "gelu tanh")
        expectValues({ $0.sigmoid() }, at: [0, 100, -100], output: [0.5, 1, 0], gradient: [0.25, 0, 0], "sigmoid")
        expectValues({ $0.tanh() }, at: [0, 0.5], output: [0, 0.462_117_16], gradient: [1, 0.786_447_7], "tanh")
        expectValues({ $0.abs() }, at: [-2, 0, 3], output: [2, 0, 3], gradient: [-1, 0, 1], "abs")
        expectValues(
            { $0.clamped(min: 0, max: 1) }, at: [-1, 0, 0.5, 1, 2], output: [0, 0, 0.5, 1, 1],
            gradient: [0, 1, 1, 1, 0], "clamped")
    }

    @Test func outputKeepsShapeAndLargeTensorsMatchSmallOnes() {
        // Large enough to run on several threads: every element must equal the one-element result.
        var generator = SplitMix64(seed: 3)
        let x = Tensor.uniform([3, 50_001], low: -4, high: 4, generator: &generator)
        for (name, op) in Self.ops.sorted(by: { $0.key < $1.key }) where !Self.positiveOnly.contains(name) {
            let y = op(x)
            #expect(y.shape == x.shape)
            let probes = [0, 7, 50_000, 100_003, 150_002]
            let singles = probes.map { op(Tensor(shape: [1], data: [x.data[$0]])).item }
            #expect(probes.map { y.data[$0] } == singles, "\(name)")
        }
    }

    // MARK: (B) finite differences

    static let shapes: [[Int]] = [[7], [3, 5], [2, 3, 5], [1, 1, 9]]

    @Test(arguments: ops.keys.sorted())
    func gradientsMatchFiniteDifferences(_ name: String) {
        let op = Self.ops[name]!
        for (index, shape) in Self.shapes.enumerated() {
            var generator = SplitMix64(seed: UInt64(100 + index))
            let x =
                Self.positiveOnly.contains(name)
                ? Tensor.uniform(shape, low: 0.3, high: 3, generator: &generator)
                : Tensor.uniform(shape, low: -3, high: 3, generator: &generator)
            x.data = awayFromKinks(x.data, kinks: Self.kinks[name] ?? [], margin: 0.05)
            let report = checkGradients(of: { op($0[0]) }, at: [x])
            #expect(report.passed, "\(name) \(shape): \(report)")
        }
    }

    // MARK: (C) PyTorch parity

    @Test(arguments: ops.keys.sorted())
    func matchesPyTorch(_ name: String) throws {
        let op = Self.ops[name]!
        try expectParity(file: "unary", case: name) { op($0[0]) }
    }
}

/// Moves values closer than `margin` to a kink out to 2 * margin from it.
func awayFromKinks(_ values: [Float], kinks: [Float], margin: Float) -> [Float] {
    values.map { v in
        for k in kinks where Swift.abs(v - k) < margin { return v < k ? k - 2 * margin : k + 2 * margin }
        return v
    }
}

/// PyTorch parity for one case of Tests/Fixtures/<family>/<file>.safetensors (made by
/// Scripts/fixtures/<family>.py): runs `op` on the stored inputs, back-propagates the stored seed and
/// compares the output (relative 1e-5) and the gradient of every input (relative 1e-4).
func expectParity(
    family: String = "ops_core", file: String, case name: String, inputs: [String] = ["x"],
    sourceLocation: SourceLocation = #_sourceLocation, _ op: ([Tensor]) -> Tensor
) throws {
    let fixture = try Fixtures.load("\(family)/\(file).safetensors")
    let tensors = try inputs.map { try fixture.tensor("\(name).\($0)") }
    for tensor in tensors { tensor.requiresGrad = true }
    let output = op(tensors)
    let forward = compare(
        output, try fixture.tensor("\(name).out"), relativeTolerance: 1e-5, absoluteTolerance: 1e-6,
        label: "\(name) forward")
    #expect(forward.passed, "\(forward)", sourceLocation: sourceLocation)
    output.backward(seed: try fixture.tensor("\(name).seed").data)
    for (input, tensor) in zip(inputs, tensors) {
        let expected = try fixture.tensor("\(name).d\(input)")
        let gradient = compare(
            tensor.gradTensor ?? Tensor.zeros(tensor.shape), expected, relativeTolerance: 1e-4, absoluteTolerance: 1e-5,
            label: "\(name) d\(input)")
        #expect(gradient.passed, "\(gradient)", sourceLocation: sourceLocation)
    }
}
