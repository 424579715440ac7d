// Differentiable batched matrix multiplication (forward and backward through BLAS sgemm).
// Legend: M rows of a, K shared dimension, N columns of b; leading dims are batch dims.

/// The matrix product over the last two axes: `out[..., i, j] = Σ_p a[..., i, p] · b[..., p, j]`.
///
/// - Parameters:
///   - a: `[..., M, K]`, rank >= 2.
///   - b: `[..., K, N]` with the same leading (batch) dims as `a`, or rank 2 `[K, N]`, then shared
///     by every batch item (a linear layer's weight).
/// - Returns: `[..., M, N]` with the leading dims of `a`.
///
/// Matches `torch.matmul` for these shapes (no broadcasting of batch dims beyond the shared `b`).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
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
                    withMutableBaseAddress(&dA) { pdA in
                        withMutableBaseAddress(&dB) { pdB in
                            matmulBackward(
                                dA: pdA, dB: pdB, dOutput: pd.baseAddress!, a: pa.baseAddress!,
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
    public func matmul(_ other: Tensor) -> Tensor { TensorCore.matmul(self, other) }
}

/// Runs `body` with a pointer to the elements of `buffer`, or nil when there is no buffer
/// (a gradient that is not wanted).
@inline(__always)
func withMutableBaseAddress<Result>(
    _ buffer: inout [Float]?, _ body: (UnsafeMutablePointer<Float>?) -> Result
) -> Result {
    if buffer == nil { return body(nil) }
    return buffer!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}
