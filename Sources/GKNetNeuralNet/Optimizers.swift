// Optimizers with PyTorch's update rules (torch.optim.SGD, Adam, AdamW, single-tensor CPU path),
// including the order of float32 roundings, and global-norm gradient clipping
// (torch.nn.utils.clip_grad_norm_). Hyper-parameters are Double like Python floats; they are
// turned into Float exactly where PyTorch turns them into the tensor's dtype.
//
// Updates are elementwise, so splitting them over threads cannot change a single bit.
import Foundation
import GKNetTensorCore

/// Everything an optimizer needs to continue exactly: per-parameter step counts and buffers,
/// keyed by parameter name (not by position, so a checkpoint survives reordering).
public struct OptimizerState: Equatable, Sendable {
    /// "SGD", "Adam" or "AdamW".
    public var kind: String
    /// Steps taken per parameter (Adam family; PyTorch's per-parameter `step`).
    public var steps: [String: Int]
    /// Buffers named `<slot>.<parameter name>`: `momentum_buffer.*`, `exp_avg.*`, `exp_avg_sq.*`.
    public var buffers: [String: [Float]]

    public init(kind: String, steps: [String: Int] = [:], buffers: [String: [Float]] = [:]) {
        self.kind = kind
        self.steps = steps
        self.buffers = buffers
    }
}

/// Why a saved optimizer state does not fit this optimizer.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public var description: String
}

/// Updates parameters in place from their accumulated gradients.
public protocol Optimizer: AnyObject {
    /// The step size used by the next `step()`; schedules set it.
    var learningRate: Double { get set }
    /// The parameters, with the names their state is saved under.
    var parameters: [(name: String, tensor: Tensor)] { get }
    /// One update of every parameter that has a gradient (parameters without one are skipped).
    func step()
    /// A copy of the state.
    var state: OptimizerState { get }
    /// Restores a state saved from an optimizer of the same kind over the same parameters.
    func load(state: OptimizerState) throws
}

extension Optimizer {
    /// Clears every parameter's gradient (PyTorch `zero_grad(set_to_none=True)`).
    public func zeroGrad() {
        for (_, tensor) in parameters { tensor.grad = nil }
    }

    /// Checks a saved state's kind and buffer sizes before anything is changed.
    func validate(_ saved: OptimizerState, kind: String, slots: [String]) throws {
        guard saved.kind == kind else {
            throw OptimizerStateError(description: "optimizer state is for \(saved.kind), not \(kind)")
        }
        let sizes = Dictionary(parameters.map { ($0.name, $0.tensor.count) }, uniquingKeysWith: { a, _ in a })
        var problems: [String] = []
        for (key, values) in saved.buffers.sorted(by: { $0.key < $1.key }) {
            guard let slot = slots.first(where: { key.hasPrefix($0 + ".") }) else {
                problems.append("unknown buffer \(key)")
                continue
            }
            let name = String(key.dropFirst(slot.count + 1))
            guard let size = sizes[name] else {
                problems.append("\(key): no parameter \(name)")
                continue
            }
            if size != values.count { problems.append("\(key): \(values.count) values for a parameter of \(size)") }
        }
        for name in saved.steps.keys.sorted() where sizes[name] == nil {
            problems.append("step count for unknown parameter \(name)")
        }
        if !problems.isEmpty {
            throw OptimizerStateError(description: "optimizer state does not fit: " + problems.joined(separator: "; "))
        }
    }
}

/// Runs `body(range)` over `0..<count` on the shared threads (elementwise updates only).
@inline(__always)
func elementwise(_ count: Int, _ body: (Range<Int>) -> Void) {
    parallelChunks(count, minimumPerThread: 65_536, body)
}

/// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay
/// (PyTorch `torch.optim.SGD`):
///
///     d = g + weightDecay * p
///     b = d (first step), else b = momentum * b + (1 - dampening) * d
///     d = nesterov ? d + momentum * b : b
///     p = p - lr * d
public final class SGD: Optimizer {
    public var learningRate: Double
    public let momentum: Double, dampening: Double, weightDecay: Double, nesterov: Bool
    public let parameters: [(name: String, tensor: Tensor)]
    private var momentumBuffers: [[Float]?]

    public init(
        parameters: [(String, Tensor)], learningRate: Double, momentum: Double = 0, dampening: Double = 0,
        weightDecay: Double = 0, nesterov: Bool = false
    ) {
        precondition(
            !nesterov || (momentum > 0 && dampening == 0),
            "SGD: Nesterov momentum needs momentum > 0 and zero dampening")
        self.parameters = parameters.map { (name: $0.0, tensor: $0.1) }
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    public func step() {
        let (lr, mu, wd) = (Float(-learningRate), Float(momentum), Float(weightDecay))
        let keep = Float(1 - dampening)
        for (index, (_, parameter)) in parameters.enumerated() {
            guard var direction = parameter.grad else { continue }
            let count = parameter.count
            parameter.data.withUnsafeMutableBufferPointer { p in
                direction.withUnsafeMutableBufferPointer { d in
                    if wd != 0 { elementwise(count) { r in for i in r { d[i] = d[i] + wd * p[i] } } }
                    guard mu != 0 else { return }
                    if momentumBuffers[index] == nil {
                        momentumBuffers[index] = Array(d)
                    } else {
                        momentumBuffers[index]!.withUnsafeMutableBufferPointer { b in
                            elementwise(count) { r in
                                for i in r {
                                    b[i] = b[i] * mu
                                    b[i] = b[i] + keep * d[i]
                                }
                            }
                        }
                    }
                    momentumBuffers[index]!.withUnsafeBufferPointer { b in
                        if nesterov {
                            elementwise(count) { r in for i in r { d[i] = d[i] + mu * b[i] } }
                        } else {
                            elementwise(count) { r in for i in r { d[i] = b[i] } }
                        }
                    }
                }
                direction.withUnsafeBufferPointer { d in
                    elementwise(count) { r in for i in r { p[i] = p[i] + lr * d[i] } }
                }
            }
        }
    }

    public var state: OptimizerState {
        var buffers: [String: [Float]] = [:]
        for (index, buffer) in momentumBuffers.enumerated() {
            if let buffer { buffers["momentum_buffer." + parameters[index].name] = buffer }
        }
        return OptimizerState(kind: "SGD", buffers: buffers)
    }

    public func load(state saved: OptimizerState) throws {
        try validate(saved, kind: "SGD", slots: ["momentum_buffer"])
        momentumBuffers = parameters.map { saved.buffers["momentum_buffer." + $0.name] }
    }
}

/// Adam (PyTorch `torch.optim.Adam`, L2 weight decay added to the gradient) and, with
/// `decoupledWeightDecay`, AdamW (`torch.optim.AdamW`: p = p * (1 - lr * weightDecay) first):
///
///     t = t + 1;  g = g + weightDecay * p  (Adam only)
///     m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
///     p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
public class Adam: Optimizer {
    public var learningRate: Double
    public let beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double
    public let decoupledWeightDecay: Bool
    public let parameters: [(name: String, tensor: Tensor)]
    private var steps: [Int]
    private var firstMoments: [[Float]]
    private var secondMoments: [[Float]]
    private var kind: String { decoupledWeightDecay ? "AdamW" : "Adam" }

    public init(
        parameters: [(String, Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
        epsilon: Double = 1e-8, weightDecay: Double = 0, decoupledWeightDecay: Bool = false
    ) {
        self.parameters = parameters.map { (name: $0.0, tensor: $0.1) }
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        steps = Array(repeating: 0, count: parameters.count)
        firstMoments = parameters.map { [Float](repeating: 0, count: $0.1.count) }
        secondMoments = firstMoments
    }

    public func step() {
        for (index, (_, parameter)) in parameters.enumerated() {
            guard let gradient = parameter.grad else { continue }
            steps[index] += 1
            let t = Double(steps[index])
            let count = parameter.count
            let stepSize = Float(-(learningRate / (1 - pow(beta1, t))))
            let correction2 = Float((1 - pow(beta2, t)).squareRoot())
            let (w1, b2, eps, wd) = (Float(1 - beta1), Float(beta2), Float(epsilon), Float(weightDecay))
            let oneMinusBeta2 = Float(1 - beta2)
            let shrink = Float(1 - learningRate * weightDecay)
            let (decoupled, coupled) = (decoupledWeightDecay, !decoupledWeightDecay && weightDecay != 0)
            parameter.data.withUnsafeMutableBufferPointer { p in
                gradient.withUnsafeBufferPointer { g in
                    firstMoments[index].withUnsafeMutableBufferPointer { m in
                        secondMoments[index].withUnsafeMutableBufferPointer { v in
                            elementwise(count) { r in
                                // Adam's usual case (no weight decay) on eight lanes at a time: the
                                // same arithmetic as the loop below (the same bits: IEEE operations
                                // per lane), which does the rest and every other case.
                                var first = r.lowerBound
                                while !decoupled && !coupled && w1 < 0.5 && first + 8 <= r.upperBound {
                                    let i = first
                                    let gi = lanes(g, i), mOld = lanes(m, i)
                                    let mi = mOld + w1 * (gi - mOld)
                                    let vi = lanes(v, i) * b2 + oneMinusBeta2 * gi * gi
                                    store(mi, m, i)
                                    store(vi, v, i)
                                    store(lanes(p, i) + stepSize * mi / (vi.squareRoot() / correction2 + eps), p, i)
                                    first += 8
                                }
                                for i in first..<r.upperBound {
                                    if decoupled { p[i] = p[i] * shrink }
                                    let gi = coupled ? g[i] + wd * p[i] : g[i]
                                    // NOTE: PyTorch's lerp(m, g, w) is m + w * (g - m) for w < 0.5.
                                    m[i] = w1 < 0.5 ? m[i] + w1 * (gi - m[i]) : gi - (gi - m[i]) * (1 - w1)
                                    v[i] = v[i] * b2
                                    v[i] = v[i] + oneMinusBeta2 * gi * gi
                                    let denominator = v[i].squareRoot() / correction2 + eps
                                    // addcdiv: p + value * m / denominator, evaluated left to right.
                                    p[i] = p[i] + stepSize * m[i] / denominator
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public var state: OptimizerState {
        var saved = OptimizerState(kind: kind)
        for (index, (name, _)) in parameters.enumerated() where steps[index] > 0 {
            saved.steps[name] = steps[index]
            saved.buffers["exp_avg." + name] = firstMoments[index]
            saved.buffers["exp_avg_sq." + name] = secondMoments[index]
        }
        return saved
    }

    public func load(state saved: OptimizerState) throws {
        try validate(saved, kind: kind, slots: ["exp_avg", "exp_avg_sq"])
        for (index, (name, tensor)) in parameters.enumerated() {
            steps[index] = saved.steps[name] ?? 0
            let zeros = [Float](repeating: 0, count: tensor.count)
            firstMoments[index] = saved.buffers["exp_avg." + name] ?? zeros
            secondMoments[index] = saved.buffers["exp_avg_sq." + name] ?? zeros
        }
    }
}

/// AdamW (PyTorch `torch.optim.AdamW`): Adam with decoupled weight decay, default 0.01.
public final class AdamW: Adam {
    public init(
        parameters: [(String, Tensor)], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
        epsilon: Double = 1e-8, weightDecay: Double = 0.01
    ) {
        super.init(
            parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2,
            epsilon: epsilon, weightDecay: weightDecay, decoupledWeightDecay: true)
    }
}

/// Scales all gradients together so that their global L2 norm is at most `maximumNorm`
/// (PyTorch `clip_grad_norm_`): coef = min(1, maximumNorm / (norm + 1e-6)), g = g * coef.
/// Tensors without a gradient are ignored.
/// - Returns: the global norm before clipping.
@discardableResult
public func clipGradientNorm(_ tensors: [Tensor], maximumNorm: Double) -> Float {
    var sumOfSquares = 0.0
    for tensor in tensors {
        guard let grad = tensor.grad else { continue }
        // Per-tensor partial sums in Double keep the result independent of thread count.
        for value in grad { sumOfSquares += Double(value) * Double(value) }
    }
    let norm = Float(sumOfSquares.squareRoot())
    let coefficient = min(Float(maximumNorm) / (norm + 1e-6), 1)
    for tensor in tensors where tensor.grad != nil {
        tensor.grad!.withUnsafeMutableBufferPointer { g in
            elementwise(g.count) { r in for i in r { g[i] = g[i] * coefficient } }
        }
    }
    return norm
}

/// Eight values of `buffer` from `index`.
@inline(__always)
private func lanes(_ buffer: UnsafeMutableBufferPointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawPointer(buffer.baseAddress! + index).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func lanes(_ buffer: UnsafeBufferPointer<Float>, _ index: Int) -> SIMD8<Float> {
    UnsafeRawPointer(buffer.baseAddress! + index).loadUnaligned(as: SIMD8<Float>.self)
}

/// Stores eight values into `buffer` from `index`.
@inline(__always)
private func store(_ values: SIMD8<Float>, _ buffer: UnsafeMutableBufferPointer<Float>, _ index: Int) {
    UnsafeMutableRawPointer(buffer.baseAddress! + index).storeBytes(of: values, as: SIMD8<Float>.self)
}
