// Differentiable batched matrix multiplication (forward and backward through BLAS sgemm).
// Legend (Shape.swift): rows of a, inner (shared) dimension, columns of b; leading dims are batch dims.

/// The matrix product over the last two axes: `out[..., i, j] = Σ_p a[..., i, p] · b[..., p, j]`.
///
/// - Parameters:
///   - a: `[..., rows, inner]`, rank >= 2.
///   - b: `[..., inner, columns]` with the same leading (batch) dims as `a`, or rank 2
///     `[inner, columns]`, then shared
///     by every batch item (a linear layer's weight).
/// - Returns: `[..., rows, columns]` with the leading dims of `a`.
///
/// Matches `torch.matmul` for these shapes (no broadcasting of batch dims beyond the shared `b`).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    let geometry = MatMulGeometry(a, b)
    let outputShape = Array(a.shape.dropLast(2)) + [geometry.m, geometry.n]
    return Tensor.op("matmul", inputs: [a, b], shape: outputShape, macs: geometry.macs) {
        newBuffer(outputShape.elementCount, zeroed: true) { out in
            guard geometry.k > 0 else { return }
            borrow(a.data, b.data) { pa, pb in
                matmulForward(output: out.baseAddress!, a: pa.baseAddress!, b: pb.baseAddress!, geometry: geometry)
            }
        }
    } backward: { dOut in
        // out = a · b: d a = dOut · bᵀ, d b = aᵀ · dOut
        let (dA, dB) = gradients((a.count, a.requiresGrad), (b.count, b.requiresGrad)) { dA, dB in
            guard !dOut.isEmpty && geometry.k > 0 else { return }
            borrow(dOut, a.data, b.data) { dy, pa, pb in
                matmulBackward(
                    dA: dA?.baseAddress, dB: dB?.baseAddress, dOutput: dy.baseAddress!, a: pa.baseAddress!,
                    b: pb.baseAddress!,
                    geometry: geometry)
            }
        }
        return [dA, dB]
    }
}

extension Tensor {
    /// `matmul(self, other)`: see the free function.
    public func matmul(_ other: Tensor) -> Tensor { GKNetTensorCore.matmul(self, other) }
}

/// A fully connected layer's map (PyTorch `F.linear`): `out[..., o] = Σ_c x[..., c] · weight[o, c] + bias[o]`.
///
/// The same as `matmul(x, weight.transposed(0, 1)) + bias`, without copying the transposed weight
/// and with the bias added inside the product.
/// - Parameters:
///   - x: `[..., C]`, rank >= 1.
///   - weight: `O x C`.
///   - bias: `O`, or nil.
/// - Returns: `[..., O]`.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    let geometry = MatMulGeometry(linear: x, weight: weight, bias: bias)
    let (rows, c, o) = (geometry.m, geometry.k, geometry.n)
    let (input, filter, biasValues) = (x.data, weight.data, bias?.data)
    return Tensor.op(
        "linear", inputs: [x, weight] + (bias.map { [$0] } ?? []), shape: Array(x.shape.dropLast()) + [o],
        macs: geometry.macs, parameter: weight
    ) {
        newBuffer(rows * o, zeroed: true) { out in
            if c == 0 {
                // An empty sum: the output is the bias (or zero).
                if let biasValues { for r in 0..<rows { for j in 0..<o { out[r * o + j] = biasValues[j] } } }
                return
            }
            borrow(input, filter, biasValues) { xp, wp, bp in
                linearForward(
                    output: out.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!, bias: bp?.baseAddress,
                    rows: rows, inputFeatures: c, outputFeatures: o)
            }
        }
    } backward: { dOut in
        // out = x · wᵀ + b: d x = dOut · w, d w = dOutᵀ · x, d b = Σ_rows dOut
        let (dx, dw, db) = gradients(
            (x.count, x.requiresGrad), (weight.count, weight.requiresGrad), (o, bias?.requiresGrad == true)
        ) { dx, dw, db in
            borrow(dOut, input, filter) { dy, xp, wp in
                guard let d = dy.baseAddress, let xb = xp.baseAddress, let wb = wp.baseAddress else { return }
                linearBackward(
                    dInput: dx?.baseAddress, dWeight: dw?.baseAddress, dBias: db?.baseAddress, dOutput: d, input: xb,
                    weight: wb, rows: rows,
                    inputFeatures: c, outputFeatures: o)
            }
        }
        return bias == nil ? [dx, dw] : [dx, dw, db]
    }
}

extension MatMulGeometry {
    /// The checked geometry of `matmul(a, b)`.
    init(_ a: Tensor, _ b: Tensor) {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: a \(a.shape) and b \(b.shape) must both have rank >= 2")
        let (m, k, n) = (a.shape[a.rank - 2], a.shape[a.rank - 1], b.shape[b.rank - 1])
        precondition(
            b.shape[b.rank - 2] == k,
            "matmul: a \(a.shape) and b \(b.shape): inner dimensions \(k) and \(b.shape[b.rank - 2]) differ")
        let batchShape = Array(a.shape.dropLast(2))
        let sharesRight = b.rank == 2
        precondition(
            sharesRight || Array(b.shape.dropLast(2)) == batchShape,
            "matmul: a \(a.shape) and b \(b.shape): batch dimensions differ (b must match them or have rank 2)")
        self.init(batch: batchShape.elementCount, m: m, k: k, n: n, sharesRightOperand: sharesRight)
    }

    /// The checked geometry of `linear(x, weight:bias:)`: rows of x by C, times the shared C x O weight.
    init(linear x: Tensor, weight: Tensor, bias: Tensor?) {
        precondition(
            x.rank >= 1 && weight.rank == 2 && x.shape.last == weight.shape[1],
            "linear: input \(x.shape) and weight \(weight.shape) do not match (need [..., C] and O x C)")
        let (o, c) = (weight.shape[0], weight.shape[1])
        if let bias {
            precondition(
                bias.shape == [o], "linear: bias \(bias.shape) and weight \(weight.shape) do not match (need [\(o)])")
        }
        let rows = c == 0 ? x.shape.dropLast().reduce(1, *) : x.count / c
        self.init(batch: 1, m: rows, k: c, n: o, sharesRightOperand: true)
    }

    /// Multiply-accumulates: inner per output element.
    var macs: Int { batch * m * k * n }
}
