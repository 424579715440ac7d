// Differentiable softmax and log-softmax over one axis (fused, numerically stable).
// Kernels in Kernels/Softmax.swift; the pullbacks keep only the output.

extension Tensor {
    private func softmaxOp(axis: Int, logarithm: Bool) -> Tensor {
        let name = logarithm ? "logSoftmax" : "softmax"
        let a = normalizedAxis(axis, rank: rank, "\(name): axis \(axis) for tensor of shape \(shape)")
        let geometry = rank == 0 ? SoftmaxGeometry(shape: [1], axis: 0) : SoftmaxGeometry(shape: shape, axis: a)
        return Tensor.op(name, inputs: [self], shape: shape) {
            let values = newBuffer(count) { out in
                borrow(data) { softmaxForward(output: out, input: $0, geometry: geometry, logarithm: logarithm) }
            }
            return (values, values)
        } backward: { [count] dOut, values in
            [
                gradient(count) { dx in
                    borrow(dOut, values) { dy, y in
                        softmaxBackward(dInput: dx, dOutput: dy, output: y, geometry: geometry, logarithm: logarithm)
                    }
                }
            ]
        }
    }

    /// exp(x_i) / Σ_j exp(x_j) along `axis` (negative axes count from the end).
    public func softmax(axis: Int) -> Tensor {
        softmaxOp(axis: axis, logarithm: false)
    }

    /// x_i - log Σ_j exp(x_j) along `axis`, computed without forming the softmax (stable for
    /// large |x|, unlike `softmax(axis:).log()`).
    public func logSoftmax(axis: Int) -> Tensor {
        softmaxOp(axis: axis, logarithm: true)
    }
}
