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
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "matmul") }
    precondition(a.rank >= 2 && b.rank >= 2, "matmul: a \(a.shape) and b \(b.shape) must both have rank >= 2")
    let m = a.shape[a.rank - 2]
    let k = a.shape[a.rank - 1]
    let n = b.shape[b.rank - 1]
    precondition(
        b.shape[b.rank - 2] == k,
        "matmul: a \(a.shape) and b \(b.shape): inner dimensions \(k) and \(b.shape[b.rank - 2]) differ")
    let batchShape = Array(a.shape.dropLast(2))
    let sharesRight = b.rank == 2
    precondition(
        sharesRight || Array(b.shape.dropLast(2)) == batchShape,
        "matmul: a \(a.shape) and b \(b.shape): batch dimensions differ (b must match them or have rank 2)")
    let geometry = MatMulGeometry(
        batch: batchShape.elementCount, m: m, k: k, n: n, sharesRightOperand: sharesRight)
    let outputShape = batchShape + [m, n]

    var values = [Float](repeating: 0, count: outputShape.elementCount)
    if !values.isEmpty && k > 0 {
        values.withUnsafeMutableBufferPointer { out in
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    matmulForward(output: out.baseAddress!, a: pa.baseAddress!, b: pb.baseAddress!, geometry: geometry)
                }
            }
        }
    }
    return Tensor(shape: outputShape, data: values).recorded("matmul", inputs: [a, b]) { dOut in
        var dA: [Float]? = a.requiresGrad ? [Float](repeating: 0, count: a.count) : nil
        var dB: [Float]? = b.requiresGrad ? [Float](repeating: 0, count: b.count) : nil
        guard !dOut.isEmpty && k > 0 else { return [dA, dB] }
        dOut.withUnsafeBufferPointer { pd in
            a.data.withUnsafeBufferPointer { pa in
                b.data.withUnsafeBufferPointer { pb in
                    withOptionalMutableBuffer(&dA) { pdA in
                        withOptionalMutableBuffer(&dB) { pdB in
                            matmulBackward(
                                dA: pdA?.baseAddress, dB: pdB?.baseAddress, dOutput: pd.baseAddress!,
                                a: pa.baseAddress!,
                                b: pb.baseAddress!, geometry: geometry)
                        }
                    }
                }
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
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "linear") }
    precondition(
        x.rank >= 1 && weight.rank == 2 && x.shape.last == weight.shape[1],
        "linear: input \(x.shape) and weight \(weight.shape) do not match (need [..., C] and O x C)")
    let (o, c) = (weight.shape[0], weight.shape[1])
    if let bias {
        precondition(
            bias.shape == [o], "linear: bias \(bias.shape) and weight \(weight.shape) do not match (need [\(o)])")
    }
    let rows = c == 0 ? x.shape.dropLast().reduce(1, *) : x.count / c
    let outputShape = Array(x.shape.dropLast()) + [o]
    let (input, filter, biasValues) = (x.data, weight.data, bias?.data)
    var values = [Float](repeating: 0, count: rows * o)
    if c == 0 {
        // An empty sum: the output is the bias (or zero).
        if let biasValues { for r in 0..<rows { for j in 0..<o { values[r * o + j] = biasValues[j] } } }
    } else if rows * o > 0 {
        values.withUnsafeMutableBufferPointer { buffer in
            input.withUnsafeBufferPointer { xp in
                filter.withUnsafeBufferPointer { wp in
                    withOptionalBuffer(biasValues) { bp in
                        linearForward(
                            output: buffer.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!,
                            bias: bp?.baseAddress,
                            rows: rows, inputFeatures: c, outputFeatures: o)
                    }
                }
            }
        }
    }
    let inputs = [x, weight] + (bias.map { [$0] } ?? [])
    return Tensor(shape: outputShape, data: values).recorded("linear", inputs: inputs) { dOut in
        var dx: [Float]? = x.requiresGrad ? [Float](repeating: 0, count: x.count) : nil
        var dw: [Float]? = weight.requiresGrad ? [Float](repeating: 0, count: weight.count) : nil
        var db: [Float]? = bias?.requiresGrad == true ? [Float](repeating: 0, count: o) : nil
        dOut.withUnsafeBufferPointer { dp in
            input.withUnsafeBufferPointer { xp in
                filter.withUnsafeBufferPointer { wp in
                    withOptionalMutableBuffers(&dx, &dw, &db) { dxp, dwp, dbp in
                        if let d = dp.baseAddress, let xb = xp.baseAddress, let wb = wp.baseAddress {
                            linearBackward(
                                dInput: dxp?.baseAddress, dWeight: dwp?.baseAddress, dBias: dbp?.baseAddress,
                                dOutput: d,
                                input: xb, weight: wb, rows: rows, inputFeatures: c, outputFeatures: o)
                        }
                    }
                }
            }
        }
        return bias == nil ? [dx, dw] : [dx, dw, db]
    }
}
