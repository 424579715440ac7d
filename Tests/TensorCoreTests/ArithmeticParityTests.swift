// PyTorch parity (Tests/Fixtures/ops_arithmetic, made by Scripts/fixtures/ops_arithmetic.py) for the
// broadcasting arithmetic operators, their scalar forms, and the fused `linear` and `batchNormELU`.
import Foundation
import GKNetTensorCore
import GKNetTestSupport
import Testing

@Suite struct ArithmeticParityTests {
    /// The case tags of Scripts/fixtures/ops_arithmetic.py BROADCASTS.
    static let broadcasts = ["same", "row", "column", "both", "left", "rank0", "one"]
    static let operators: [String: @Sendable (Tensor, Tensor) -> Tensor] = [
        "add": { $0 + $1 }, "sub": { $0 - $1 }, "mul": { $0 * $1 }, "div": { $0 / $1 },
    ]

    @Test(arguments: ["add", "sub", "mul", "div"], broadcasts)
    func broadcastingMatchesPyTorch(op: String, broadcast: String) throws {
        let function = try #require(Self.operators[op])
        try expectParity(family: "ops_arithmetic", file: "arithmetic", case: "\(op)_\(broadcast)", inputs: ["a", "b"]) {
            function($0[0], $0[1])
        }
    }

    static let scalarForms: [String: @Sendable (Tensor) -> Tensor] = [
        "scalar_add": { $0 + 2.5 }, "scalar_radd": { 2.5 + $0 }, "scalar_sub": { $0 - 1.5 },
        "scalar_rsub": { 1.5 - $0 },
        "scalar_mul": { $0 * -0.75 }, "scalar_rmul": { -0.75 * $0 }, "scalar_div": { $0 / 3 }, "negate": { -$0 },
    ]

    @Test(arguments: scalarForms.keys.sorted())
    func scalarFormsMatchPyTorch(name: String) throws {
        let function = try #require(Self.scalarForms[name])
        try expectParity(family: "ops_arithmetic", file: "arithmetic", case: name) { function($0[0]) }
    }

    /// Every case in the fixture is one of the above (a case added in Python is not silently skipped).
    @Test func everyArithmeticCaseIsRun() throws {
        let fixture = try Fixtures.load("ops_arithmetic/arithmetic.safetensors")
        let cases = Set(fixture.tensors.keys.map { String($0.split(separator: ".")[0]) })
        let run = Set(
            Self.operators.keys.flatMap { op in Self.broadcasts.map { "\(op)_\($0)" } } + Self.scalarForms.keys)
        #expect(cases == run)
    }

    @Test func linearMatchesPyTorch() throws {
        try expectParity(family: "ops_arithmetic", file: "fused", case: "linear_3d", inputs: ["x", "weight", "bias"]) {
            linear($0[0], weight: $0[1], bias: $0[2])
        }
        try expectParity(family: "ops_arithmetic", file: "fused", case: "linear_no_bias", inputs: ["x", "weight"]) {
            linear($0[0], weight: $0[1])
        }
        try expectParity(
            family: "ops_arithmetic", file: "fused", case: "linear_vector", inputs: ["x", "weight", "bias"]
        ) {
            linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    @Test(arguments: [
        ("bn_elu_train", true, Float(0.1), Float(1), true, false),
        ("bn_elu_train_residual", true, 0.2, 1, true, true),
        ("bn_elu_train_alpha", true, 0.1, 0.5, true, false),
        ("bn_elu_train_plain_nc", true, 0.3, 1, false, false),
        ("bn_elu_eval_residual", false, 0.1, 1, true, true),
    ])
    func batchNormELUMatchesPyTorch(
        name: String, training: Bool, momentum: Float, alpha: Float, affine: Bool, residual: Bool
    ) throws {
        let fixture = try Fixtures.load("ops_arithmetic/fused.safetensors")
        let runningMean = try fixture.tensor("\(name).running_mean")
        let runningVariance = try fixture.tensor("\(name).running_var")
        let inputs = ["x"] + (affine ? ["weight", "bias"] : []) + (residual ? ["residual"] : [])
        try expectParity(family: "ops_arithmetic", file: "fused", case: name, inputs: inputs) { t in
            batchNormELU(
                t[0], weight: affine ? t[1] : nil, bias: affine ? t[2] : nil, runningMean: runningMean,
                runningVariance: runningVariance,
                training: training, momentum: momentum, residual: residual ? t[inputs.count - 1] : nil, alpha: alpha)
        }
        let mean = compare(runningMean, try fixture.tensor("\(name).running_mean_after"), label: "\(name) running mean")
        #expect(mean.passed, "\(mean)")
        let variance = compare(
            runningVariance, try fixture.tensor("\(name).running_var_after"), label: "\(name) running variance")
        #expect(variance.passed, "\(variance)")
    }
}
