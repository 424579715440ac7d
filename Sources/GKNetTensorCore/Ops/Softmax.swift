// Differentiable softmax and log-softmax over one axis (fused, numerically stable).
// Kernels in Kernels/Softmax.swift; the pullbacks keep only the output.

extension Tensor {
    private func softmaxOp(axis: Int, logarithm: Bool) -> Tensor {
        let name = logarithm ? "logSoftmax" : "softmax"
        let a = normalizedAxis(axis, rank: rank, "\(name): axis \(axis) for tensor of shape \(shape)")
        let geometry = rank == 0 ? SoftmaxGeometry(shape: [1], axis: 0) : SoftmaxGeometry(shape: shape, axis: a)
        let count = self.count
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBufferPointer {
                softmaxForward(output: buffer, input: $0, geometry: geometry, logarithm: logarithm)
            }
            initialized = count
        }
        return Tensor(shape: shape, data: values).recorded(name, inputs: [self]) { dOut in
            var dInput = [Float](repeating: 0, count: count)
            dInput.withUnsafeMutableBufferPointer { dx in
                dOut.withUnsafeBufferPointer { dy in
                    values.withUnsafeBufferPointer {
                        softmaxBackward(dInput: dx, dOutput: dy, output: $0, geometry: geometry, logarithm: logarithm)
                    }
                }
            }
            return [dInput]
        }
    }

    /// exp(x_i) / Σ_j exp(x_j) along `axis` (negative axes count from the end).
    public func softmax(axis: Int) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "softmax") }
        return softmaxOp(axis: axis, logarithm: false)
    }

    /// x_i - log Σ_j exp(x_j) along `axis`, computed without forming the softmax (stable for
    /// large |x|, unlike `softmax(axis:).log()`).
    public func logSoftmax(axis: Int) -> Tensor {
        softmaxOp(axis: axis, logarithm: true)
    }
}
