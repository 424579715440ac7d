// Elementwise unary kernels over contiguous buffers, as forward/backward pairs.
// Forward: out[i] = f(x[i]). Backward accumulates dx[i] += dOut[i] * f'(x[i]), written from
// whichever of x or out the op keeps (each kernel says which).
import Foundation

/// Elements per thread below which a cheap elementwise loop stays on the calling thread.
let cheapElementwiseGrain = 1 << 15
/// The same for loops that call libm (exp, erf, tanh: about 10 ns per element).
let transcendentalElementwiseGrain = 1 << 12

// MARK: - exp, log, sqrt, pow

func expForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        for i in range { output[i] = fastExp(input[i]) }
    }
}

/// Uses the forward output.
func expBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = exp(x), so d x = d out * exp(x) = d out * out
        for i in range { dInput[i] += dOutput[i] * output[i] }
    }
}

func logForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        for i in range { output[i] = Foundation.log(input[i]) }
    }
}

/// Uses the forward input.
func logBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = log(x), so d x = d out / x
        for i in range { dInput[i] += dOutput[i] / input[i] }
    }
}

func sqrtForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: cheapElementwiseGrain) { range in
        for i in range { output[i] = input[i].squareRoot() }
    }
}

/// Uses the forward output.
func sqrtBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = sqrt(x), so d x = d out * 0.5 / sqrt(x) = d out * 0.5 / out
        for i in range { dInput[i] += dOutput[i] * 0.5 / output[i] }
    }
}

func powForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, exponent p: Float) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        // NOTE: the common exponents avoid libm (and stay exact for negative bases).
        if p == 2 {
            for i in range { output[i] = input[i] * input[i] }
        } else if p == 1 {
            for i in range { output[i] = input[i] }
        } else {
            for i in range { output[i] = Foundation.pow(input[i], p) }
        }
    }
}

/// Uses the forward input.
func powBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>,
    exponent p: Float
) {
    parallelChunks(dInput.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        // forward: out = x^p, so d x = d out * p * x^(p-1)
        if p == 2 {
            for i in range { dInput[i] += dOutput[i] * 2 * input[i] }
        } else if p == 1 {
            for i in range { dInput[i] += dOutput[i] }
        } else {
            for i in range { dInput[i] += dOutput[i] * p * Foundation.pow(input[i], p - 1) }
        }
    }
}

// MARK: - Piecewise: relu, leakyRelu, elu, abs, clamp

func reluForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: cheapElementwiseGrain) { range in
        for i in range { output[i] = input[i] > 0 ? input[i] : 0 }
    }
}

/// Uses the forward output (out > 0 exactly where x > 0).
func reluBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = max(x, 0), so d x = d out where x > 0, else 0 (0 at the kink, like PyTorch)
        for i in range { dInput[i] += output[i] > 0 ? dOutput[i] : 0 }
    }
}

func leakyReluForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, slope: Float) {
    parallelChunks(input.count, minimumPerThread: cheapElementwiseGrain) { range in
        for i in range { output[i] = input[i] > 0 ? input[i] : slope * input[i] }
    }
}

/// Uses the forward input.
func leakyReluBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>,
    slope: Float
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = x > 0 ? x : slope * x, so d x = d out * (x > 0 ? 1 : slope)
        for i in range { dInput[i] += input[i] > 0 ? dOutput[i] : slope * dOutput[i] }
    }
}

func eluForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, alpha: Float) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        for i in range {
            let x = input[i]
            // Only x <= 0 reaches the exponential (NaN passes through it).
            let negative = alpha * fastExpMinusOneOfNonPositive(x > 0 ? 0 : x)
            output[i] = x > 0 ? x : negative
        }
    }
}

/// Uses the forward input and output.
func eluBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>,
    output: UnsafeBufferPointer<Float>, alpha: Float
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = x > 0 ? x : alpha * (exp(x) - 1),
        // so d x = d out * (x > 0 ? 1 : alpha * exp(x)) and alpha * exp(x) = out + alpha.
        // Every value is loaded on both sides of the choice: a load on one side only kept the
        // compiler from vectorizing the loop, which then ran scalar with a branch per value
        // (mispredicted about half the time on activations of both signs).
        for i in range {
            let (x, dy, y) = (input[i], dOutput[i], output[i])
            dInput[i] += x > 0 ? dy : dy * (y + alpha)
        }
    }
}

func absForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: cheapElementwiseGrain) { range in
        for i in range { output[i] = Swift.abs(input[i]) }
    }
}

/// Uses the forward input.
func absBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = |x|, so d x = d out * sign(x), with sign(0) = 0 (PyTorch)
        for i in range {
            let x = input[i]
            dInput[i] += x > 0 ? dOutput[i] : (x < 0 ? -dOutput[i] : 0)
        }
    }
}

func clampForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, lower: Float, upper: Float
) {
    parallelChunks(input.count, minimumPerThread: cheapElementwiseGrain) { range in
        for i in range {
            let x = input[i]
            output[i] = x < lower ? lower : (x > upper ? upper : x)
        }
    }
}

/// Uses the forward input.
func clampBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>,
    lower: Float, upper: Float
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = min(max(x, lower), upper), so d x = d out where lower <= x <= upper
        // (bounds included, like PyTorch clamp), else 0
        for i in range {
            let x = input[i]
            dInput[i] += x >= lower && x <= upper ? dOutput[i] : 0
        }
    }
}

// MARK: - Smooth activations: gelu, sigmoid, tanh

/// sqrt(2 / pi), the tanh-GELU input scale.
private let geluTanhScale: Float = 0.797_884_560_802_865_4
/// 1 / sqrt(2 pi), the standard normal density at 0.
private let inverseSquareRootTwoPi: Float = 0.398_942_280_401_432_7

func geluForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, tanhApproximation: Bool)
{
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        if tanhApproximation {
            // out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
            for i in range {
                let x = input[i]
                output[i] = 0.5 * x * (1 + Foundation.tanh(geluTanhScale * (x + 0.044715 * x * x * x)))
            }
        } else {
            // out = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
            for i in range {
                let x = input[i]
                output[i] = 0.5 * x * (1 + Foundation.erf(x * 0.707_106_781_186_547_5))
            }
        }
    }
}

/// Uses the forward input.
func geluBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>,
    tanhApproximation: Bool
) {
    parallelChunks(dInput.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        if tanhApproximation {
            // forward: out = 0.5 x (1 + t), t = tanh(u), u = s (x + 0.044715 x^3), so
            // d x = d out * (0.5 (1 + t) + 0.5 x (1 - t^2) s (1 + 3 * 0.044715 x^2))
            for i in range {
                let x = input[i]
                let t = Foundation.tanh(geluTanhScale * (x + 0.044715 * x * x * x))
                let du = geluTanhScale * (1 + 3 * 0.044715 * x * x)
                dInput[i] += dOutput[i] * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
            }
        } else {
            // forward: out = x Phi(x), so d x = d out * (Phi(x) + x phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi)
            for i in range {
                let x = input[i]
                let cdf = 0.5 * (1 + Foundation.erf(x * 0.707_106_781_186_547_5))
                let pdf = inverseSquareRootTwoPi * fastExp(-0.5 * x * x)
                dInput[i] += dOutput[i] * (cdf + x * pdf)
            }
        }
    }
}

func sigmoidForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        // NOTE: 1 / (1 + exp(-x)) saturates cleanly: exp(-x) = inf gives 0, never NaN.
        for i in range { output[i] = 1 / (1 + fastExp(-input[i])) }
    }
}

/// Uses the forward output.
func sigmoidBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = 1 / (1 + exp(-x)), so d x = d out * out * (1 - out)
        for i in range { dInput[i] += dOutput[i] * output[i] * (1 - output[i]) }
    }
}

func tanhForward(output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>) {
    parallelChunks(input.count, minimumPerThread: transcendentalElementwiseGrain) { range in
        for i in range { output[i] = Foundation.tanh(input[i]) }
    }
}

/// Uses the forward output.
func tanhBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>
) {
    parallelChunks(dInput.count, minimumPerThread: cheapElementwiseGrain) { range in
        // forward: out = tanh(x), so d x = d out * (1 - out^2)
        for i in range { dInput[i] += dOutput[i] * (1 - output[i] * output[i]) }
    }
}
