// Differentiable elementwise unary ops: out has the shape of x; kernels in Kernels/Elementwise.swift.
// Each pullback keeps only what its backward kernel reads (x, out, or both).

/// Which form of GELU to compute (PyTorch `approximate='none'` / `'tanh'`).
public enum GELUApproximation: Sendable {
    /// The exact form x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
    case none
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    case tanh
}

typealias UnaryForwardKernel = (_ output: UnsafeMutableBufferPointer<Float>, _ input: UnsafeBufferPointer<Float>) ->
    Void
typealias UnaryBackwardKernel = (
    _ dInput: UnsafeMutableBufferPointer<Float>, _ dOutput: UnsafeBufferPointer<Float>,
    _ input: UnsafeBufferPointer<Float>, _ output: UnsafeBufferPointer<Float>
) -> Void

extension Tensor {
    /// Applies `forward` to every element and records `backward`, which sees x and out.
    ///
    /// `keepsInput` / `keepsOutput` say which buffers the pullback holds on to (the other one is
    /// passed to `backward` empty), so an op keeps no more activations than its derivative needs.
    func unaryOp(
        _ name: String, keepsInput: Bool, keepsOutput: Bool,
        forward: UnaryForwardKernel, backward: @escaping UnaryBackwardKernel
    ) -> Tensor {
        let savedInput = keepsInput ? data : []
        return Tensor.op(name, inputs: [self], shape: shape) {
            let values = newBuffer(count) { out in borrow(data) { forward(out, $0) } }
            return (values, keepsOutput ? values : [])
        } backward: { [count] dOut, savedOutput in
            [
                gradient(count) { dx in
                    borrow(dOut, savedInput, savedOutput) { dy, x, y in backward(dx, dy, x, y) }
                }
            ]
        }
    }

    /// e^x, elementwise.
    public func exp() -> Tensor {
        unaryOp("exp", keepsInput: false, keepsOutput: true, forward: { expForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            expBackward(dInput: dx, dOutput: dy, output: y)
        }
    }

    /// Natural logarithm, elementwise (x <= 0 gives -inf / NaN like PyTorch).
    public func log() -> Tensor {
        unaryOp("log", keepsInput: true, keepsOutput: false, forward: { logForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            logBackward(dInput: dx, dOutput: dy, input: x)
        }
    }

    /// Square root, elementwise.
    public func sqrt() -> Tensor {
        unaryOp("sqrt", keepsInput: false, keepsOutput: true, forward: { sqrtForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            sqrtBackward(dInput: dx, dOutput: dy, output: y)
        }
    }

    /// x^p for a scalar exponent p, elementwise; d/dx = p x^(p-1).
    public func pow(_ p: Float) -> Tensor {
        unaryOp(
            "pow", keepsInput: true, keepsOutput: false, forward: { powForward(output: $0, input: $1, exponent: p) }
        ) { dx, dy, x, y in
            powBackward(dInput: dx, dOutput: dy, input: x, exponent: p)
        }
    }

    /// max(x, 0); the gradient at 0 is 0.
    public func relu() -> Tensor {
        unaryOp("relu", keepsInput: false, keepsOutput: true, forward: { reluForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            reluBackward(dInput: dx, dOutput: dy, output: y)
        }
    }

    /// x for x > 0, else slope * x.
    public func leakyRelu(slope: Float = 0.01) -> Tensor {
        unaryOp(
            "leakyRelu", keepsInput: true, keepsOutput: false,
            forward: { leakyReluForward(output: $0, input: $1, slope: slope) }
        ) { dx, dy, x, y in
            leakyReluBackward(dInput: dx, dOutput: dy, input: x, slope: slope)
        }
    }

    /// x for x > 0, else alpha (e^x - 1) (PyTorch `F.elu`).
    public func elu(alpha: Float = 1) -> Tensor {
        unaryOp(
            "elu", keepsInput: true, keepsOutput: true, forward: { eluForward(output: $0, input: $1, alpha: alpha) }
        ) { dx, dy, x, y in
            eluBackward(dInput: dx, dOutput: dy, input: x, output: y, alpha: alpha)
        }
    }

    /// Gaussian error linear unit x Phi(x), exact (erf) or with the tanh approximation (PyTorch `F.gelu`).
    public func gelu(approximation: GELUApproximation = .none) -> Tensor {
        let tanhForm = approximation == .tanh
        return unaryOp(
            "gelu", keepsInput: true, keepsOutput: false,
            forward: { geluForward(output: $0, input: $1, tanhApproximation: tanhForm) }
        ) { dx, dy, x, y in
            geluBackward(dInput: dx, dOutput: dy, input: x, tanhApproximation: tanhForm)
        }
    }

    /// 1 / (1 + e^-x).
    public func sigmoid() -> Tensor {
        unaryOp(
            "sigmoid", keepsInput: false, keepsOutput: true, forward: { sigmoidForward(output: $0, input: $1) }
        ) { dx, dy, x, y in
            sigmoidBackward(dInput: dx, dOutput: dy, output: y)
        }
    }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor {
        unaryOp("tanh", keepsInput: false, keepsOutput: true, forward: { tanhForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            tanhBackward(dInput: dx, dOutput: dy, output: y)
        }
    }

    /// |x|; the gradient at 0 is 0 (PyTorch).
    public func abs() -> Tensor {
        unaryOp("abs", keepsInput: true, keepsOutput: false, forward: { absForward(output: $0, input: $1) }) {
            dx, dy, x, y in
            absBackward(dInput: dx, dOutput: dy, input: x)
        }
    }

    /// min(max(x, lower), upper); the gradient passes where lower <= x <= upper (PyTorch `clamp`).
    /// - Precondition: `lower <= upper`.
    public func clamped(min lower: Float, max upper: Float) -> Tensor {
        precondition(lower <= upper, "clamped: min \(lower) > max \(upper) for tensor of shape \(shape)")
        return unaryOp(
            "clamp", keepsInput: true, keepsOutput: false,
            forward: { clampForward(output: $0, input: $1, lower: lower, upper: upper) }
        ) { dx, dy, x, y in
            clampBackward(dInput: dx, dOutput: dy, input: x, lower: lower, upper: upper)
        }
    }
}
