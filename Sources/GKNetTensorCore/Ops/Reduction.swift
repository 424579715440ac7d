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
    private func scaledSum(
        _ name: String, profiledAs profileName: String? = nil, axes: Set<Int>, outputShape: [Int], mean: Bool
    ) -> Tensor {
        let geometry = ReductionGeometry(shape: shape, axes: axes)
        let scale = mean ? 1 / Double(geometry.reductionSize) : 1
        return Tensor.op(name, profiledAs: profileName, inputs: [self], shape: outputShape) {
            newBuffer(geometry.outputCount) { out in
                borrow(data) { sumForward(output: out, input: $0, geometry: geometry, scale: scale) }
            }
        } backward: { [count] dOut in
            [
                gradient(count) { dx in
                    borrow(dOut) { sumBackward(dInput: dx, dOutput: $0, geometry: geometry, scale: Float(scale)) }
                }
            ]
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
        let (resolved, outputShape) = reductionShape(axes, keepingDimensions: keepingDimensions, "sum")
        return scaledSum("sum", profiledAs: "sum(axes:)", axes: resolved, outputShape: outputShape, mean: false)
    }

    /// The mean of all elements, as a scalar tensor (NaN for an empty tensor, like PyTorch).
    public func mean() -> Tensor {
        scaledSum("mean", axes: Set(shape.indices), outputShape: [], mean: true)
    }

    /// The mean over `axes`; shapes as in `sum(axes:keepingDimensions:)`.
    public func mean(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let (resolved, outputShape) = reductionShape(axes, keepingDimensions: keepingDimensions, "mean")
        return scaledSum("mean", profiledAs: "mean(axes:)", axes: resolved, outputShape: outputShape, mean: true)
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
        return Tensor.op("max", inputs: [self], shape: outputShape) {
            var argmax = [Int](repeating: 0, count: geometry.outputCount)
            let values = newBuffer(geometry.outputCount, zeroed: true) { out in
                borrow(data) { x in
                    borrowMutable(&argmax) { maxForward(output: out, argmax: $0, input: x, geometry: geometry) }
                }
            }
            return (values, argmax)
        } backward: { [count] dOut, argmax in
            [gradient(count) { dx in borrow(dOut, argmax) { maxBackward(dInput: dx, dOutput: $0, argmax: $1) } }]
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
