// Reverse-mode automatic differentiation: each recorded op keeps its inputs and a pullback closure
// (micrograd's closure per op). `backward()` walks the graph in reverse topological order, found
// iteratively so deep graphs cannot overflow the stack, and frees the graph as it goes.

/// Maps the gradient of an op's output to one gradient per input (`nil` where none is needed).
/// The returned buffers have the element counts of the corresponding inputs.
public typealias Pullback = (_ dOutput: [Float]) -> [[Float]?]

/// One recorded op: its inputs and how to send the output's gradient back to them.
final class TapeNode {
    let inputs: [Tensor]
    let pullback: Pullback
    let name: String

    init(inputs: [Tensor], name: String, pullback: @escaping Pullback) {
        self.inputs = inputs
        self.pullback = pullback
        self.name = name
    }
}

/// Whether ops record themselves for autograd.
public enum GradientMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` without recording any op: nothing it computes keeps a graph or its activations alive
/// (PyTorch `torch.no_grad()` / `inference_mode`).
public func withoutGradient<Result>(_ body: () throws -> Result) rethrows -> Result {
    try GradientMode.$isEnabled.withValue(false, operation: body)
}

extension Tensor {
    /// Attaches `pullback` to this freshly computed output when any input takes part in autograd.
    ///
    /// Ops call this last: `return output.recorded("conv2d", inputs: [x, w]) { dOut in [dx, dw] }`.
    /// Nothing is kept when gradient recording is off or no input requires a gradient.
    @discardableResult
    public func recorded(_ name: String, inputs: [Tensor], pullback: @escaping Pullback) -> Tensor {
        guard Tensor.isRecording(inputs) else { return self }
        requiresGrad = true
        node = TapeNode(inputs: inputs, name: name, pullback: pullback)
        return self
    }

    /// Whether an op on `inputs` is recorded: gradient recording is on and some input requires a gradient.
    @inline(__always)
    static func isRecording(_ inputs: [Tensor]) -> Bool {
        GradientMode.isEnabled && inputs.contains { $0.requiresGrad }
    }

    /// Whether this tensor is a leaf of the graph (no recorded producer).
    public var isLeaf: Bool { node == nil }

    /// Back-propagates from this tensor.
    ///
    /// - Parameter seed: the gradient of the final objective with respect to this tensor;
    ///   defaults to ones (so a scalar loss gets d loss / d loss = 1).
    /// Leaf tensors that require gradients accumulate into `grad` (`+=`, like PyTorch).
    /// The graph below this tensor is freed afterwards.
    public func backward(seed: [Float]? = nil) {
        precondition(requiresGrad, "backward: tensor of shape \(shape) does not require a gradient")
        if let seed {
            precondition(
                seed.count == count, "backward: seed has \(seed.count) elements, tensor of shape \(shape) has \(count)")
        }
        let order = topologicalOrder()
        var pending: [ObjectIdentifier: [Float]] = [:]
        pending[ObjectIdentifier(self)] = seed ?? [Float](repeating: 1, count: count)

        for tensor in order.reversed() {
            guard let gradient = pending.removeValue(forKey: ObjectIdentifier(tensor)) else { continue }
            guard let node = tensor.node else {
                tensor.accumulateGrad(gradient)
                continue
            }
            if tensor.retainsGrad { tensor.accumulateGrad(gradient) }
            let profiled = OpProfiler.begin()
            let inputGradients = node.pullback(gradient)
            OpProfiler.end(profiled, "backward \(node.name) \(tensor.shape)")
            precondition(
                inputGradients.count == node.inputs.count,
                "backward: \(node.name) returned \(inputGradients.count) gradients for \(node.inputs.count) inputs")
            for (input, inputGradient) in zip(node.inputs, inputGradients) {
                guard input.requiresGrad, let inputGradient else { continue }
                precondition(
                    inputGradient.count == input.count,
                    "backward: \(node.name) returned a gradient of \(inputGradient.count) elements for an input of "
                        + "shape \(input.shape)"
                )
                let key = ObjectIdentifier(input)
                // Taken out of the dictionary first, so the sum happens in place (no copy-on-write copy).
                if var existing = pending.removeValue(forKey: key) {
                    addInPlace(&existing, inputGradient)
                    pending[key] = existing
                } else {
                    pending[key] = inputGradient
                }
            }
            // Free the graph as we go (tinygrad's `del t._ctx`): activations die with the node.
            tensor.node = nil
        }
    }

    private func accumulateGrad(_ gradient: [Float]) {
        if grad == nil {
            grad = gradient
        } else {
            addInPlace(&grad!, gradient)
        }
    }

    /// Every tensor reachable from this one that requires a gradient, inputs before outputs.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative depth-first search with an explicit stack of (tensor, children expanded?).
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded {
                order.append(tensor)
                continue
            }
            let id = ObjectIdentifier(tensor)
            if visited.contains(id) { continue }
            visited.insert(id)
            stack.append((tensor, true))
            for input in tensor.node?.inputs ?? []
            where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }
}

@inline(__always)
func addInPlace(_ target: inout [Float], _ source: [Float]) {
    target.withUnsafeMutableBufferPointer { t in
        source.withUnsafeBufferPointer { s in
            guard let tp = t.baseAddress, let sp = s.baseAddress else { return }
            parallelChunks(t.count, minimumPerThread: cheapElementwiseGrain) { range in
                for i in range { tp[i] += sp[i] }
            }
        }
    }
}
