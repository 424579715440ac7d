// Differentiable reductions: sum, mean, max over axes; variance composed from them.
// Kernels in Kernels/Reduce.swift. Sums accumulate in Double.

extension Tensor {
    /// The normalised, de-duplicated axes and the output shape of a reduction.
    func reductionShape(_ axes: [Int], keepingDimensions: Bool, _ op: String) -> (axes: Set<Int>, shape: [Int]) {
        var resolved = Set<Int>()
        for axis in axes {
            let a = normalizedAxis(axis, rank: rank, "\(op): tensor of shape \(shape), axes \(axes)")
            precondition(!resolved.contains(a), "\(op): axis \(axis) repeated in \(axes) for tensor of shape \(shape)")
            resolved.insert(a)
        }
        var outputShape: [Int] = []
        for (axis, size) in shape.enumerated() {
            if !resolved.contains(axis) { outputShape.append(size) } else if keepingDimensions { outputShape.append(1) }
        }
        return (resolved, outputShape)
    }

    /// Sum (scale 1) or mean (scale 1 / count) over `axes`.
    private func scaledSum(_ name: String, axes: Set<Int>, outputShape: [Int], mean: Bool) -> Tensor {
        let geometry = ReductionGeometry(shape: shape, axes: axes)
        let scale = mean ? 1 / Double(geometry.reductionSize) : 1
        let values = [Float](unsafeUninitializedCapacity: geometry.outputCount) { buffer, initialized in
            data.withUnsafeBufferPointer { sumForward(output: buffer, input: $0, geometry: geometry, scale: scale) }
            initialized = geometry.outputCount
        }
        let count = self.count
        return Tensor(shape: outputShape, data: values).recorded(name, inputs: [self]) { dOut in
            var dInput = [Float](repeating: 0, count: count)
            dInput.withUnsafeMutableBufferPointer { dx in
                dOut.withUnsafeBufferPointer {
                    sumBackward(dInput: dx, dOutput: $0, geometry: geometry, scale: Float(scale))
                }
            }
            return [dInput]
        }
    }

    /// The sum of all elements, as a scalar (rank-0) tensor.
    public func sum() -> Tensor {
        scaledSum("sum", axes: Set(shape.indices), outputShape: [], mean: false)
    }

    /// Σ over `axes` (negative axes count from the end).
    ///
    /// out has the shape of x without the reduced axes, or with them as 1 when `keepingDimensions`.
    /// An empty `axes` reduces nothing (NumPy's `axis=()`; PyTorch's `dim=[]` would sum everything).
    public func sum(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "sum(axes:)") }
        let (resolved, outputShape) = reductionShape(axes, keepingDimensions: keepingDimensions, "sum")
        return scaledSum("sum", axes: resolved, outputShape: outputShape, mean: false)
    }

    /// The mean of all elements, as a scalar tensor (NaN for an empty tensor, like PyTorch).
    public func mean() -> Tensor {
        scaledSum("mean", axes: Set(shape.indices), outputShape: [], mean: true)
    }

    /// The mean over `axes`; shapes as in `sum(axes:keepingDimensions:)`.
    public func mean(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "mean(axes:)") }
        let (resolved, outputShape) = reductionShape(axes, keepingDimensions: keepingDimensions, "mean")
        return scaledSum("mean", axes: resolved, outputShape: outputShape, mean: true)
    }

    /// The maximum over `axes`; shapes as in `sum(axes:keepingDimensions:)`.
    ///
    /// The gradient goes to the first maximum in row-major order (like `torch.max(dim)`; note that
    /// `torch.amax` splits it evenly between ties instead).
    /// - Precondition: the reduced axes are not empty (size 0).
    public func max(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let (resolved, outputShape) = reductionShape(axes, keepingDimensions: keepingDimensions, "max")
        let geometry = ReductionGeometry(shape: shape, axes: resolved)
        precondition(
            geometry.reductionSize > 0 || geometry.outputCount == 0,
            "max: reducing tensor of shape \(shape) over empty axes \(axes)")
        let outputCount = geometry.outputCount
        var values = [Float](repeating: 0, count: outputCount)
        var argmax = [Int](repeating: 0, count: outputCount)
        if outputCount > 0 {
            data.withUnsafeBufferPointer { x in
                values.withUnsafeMutableBufferPointer { out in
                    argmax.withUnsafeMutableBufferPointer {
                        maxForward(output: out, argmax: $0, input: x, geometry: geometry)
                    }
                }
            }
        }
        let count = self.count
        return Tensor(shape: outputShape, data: values).recorded("max", inputs: [self]) { dOut in
            var dInput = [Float](repeating: 0, count: count)
            dInput.withUnsafeMutableBufferPointer { dx in
                dOut.withUnsafeBufferPointer { dy in
                    argmax.withUnsafeBufferPointer { maxBackward(dInput: dx, dOutput: dy, argmax: $0) }
                }
            }
            return [dInput]
        }
    }

    /// The variance over `axes`: mean((x - mean(x))^2) * n / (n - 1 if `unbiased` else n).
    ///
    /// Composed from primitives (no backward code of its own). Defaults to the biased (population)
    /// variance, as normalisation layers use it; PyTorch's `torch.var` defaults to unbiased.
    public func variance(axes: [Int], keepingDimensions: Bool = false, unbiased: Bool = false) -> Tensor {
        let (resolved, _) = reductionShape(axes, keepingDimensions: keepingDimensions, "variance")
        let n = resolved.reduce(1) { $0 * shape[$1] }
        let centered = self - mean(axes: axes, keepingDimensions: true)
        let divisor = unbiased ? n - 1 : n
        return (centered * centered).sum(axes: axes, keepingDimensions: keepingDimensions) / Float(divisor)
    }
}
