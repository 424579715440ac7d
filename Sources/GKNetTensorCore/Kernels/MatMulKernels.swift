// Batched matrix multiplication kernels over BLAS sgemm (row-major, transposes by flag, never by copy).
// Legend (Shape.swift): batch (product of the leading dims), rows of a, inner (shared) dimension,
// columns of b: BLAS's m, k, n, the fields of MatMulGeometry.

/// The geometry of `C[b] = A[b] · B[b]` (or `A[b] · B` when B is shared across the batch).
public struct MatMulGeometry: Equatable, Sendable {
    /// Number of matrices in the batch (product of the leading dimensions of A).
    public var batch: Int
    public var m: Int
    public var k: Int
    public var n: Int
    /// Whether one inner x columns matrix b serves every batch item (b of rank 2).
    public var sharesRightOperand: Bool

    public init(batch: Int, m: Int, k: Int, n: Int, sharesRightOperand: Bool) {
        self.batch = batch
        self.m = m
        self.k = k
        self.n = n
        self.sharesRightOperand = sharesRightOperand
    }
}

/// `output[i] = a[i] · b[i]` with a: batch x rows x inner, b: batch x inner x columns (or inner x
/// columns, shared), output: batch x rows x columns.
///
/// A shared b folds the batch into the rows (one (batch·rows) x inner by inner x columns product).
public func matmulForward(
    output: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, geometry g: MatMulGeometry
) {
    // NOTE: an empty dimension leaves the (zero-initialised) output as it is; BLAS rejects lda = 0.
    if g.batch == 0 || g.m == 0 || g.k == 0 || g.n == 0 { return }
    if g.sharesRightOperand || g.batch == 1 {
        BLAS.sgemm(m: g.batch * g.m, n: g.n, k: g.k, a: a, lda: g.k, b: b, ldb: g.n, c: output, ldc: g.n)
        return
    }
    for item in 0..<g.batch {
        BLAS.sgemm(
            m: g.m, n: g.n, k: g.k, a: a + item * g.m * g.k, lda: g.k, b: b + item * g.k * g.n, ldb: g.n,
            c: output + item * g.m * g.n, ldc: g.n)
    }
}

/// Accumulates the gradients of `output = a · b` (either pointer may be nil when not needed).
///
/// In the forward pass: `C[i,j] = Σ_p A[i,p] · B[p,j]`, so
/// `dA[i,p] += Σ_j dC[i,j] · B[p,j]` (dA += dC · Bᵀ) and `dB[p,j] += Σ_i A[i,p] · dC[i,j]` (dB += Aᵀ · dC);
/// for a shared B the second sum also runs over the batch, which folding the batch into rows gives.
public func matmulBackward(
    dA: UnsafeMutablePointer<Float>?, dB: UnsafeMutablePointer<Float>?, dOutput: UnsafePointer<Float>,
    a: UnsafePointer<Float>, b: UnsafePointer<Float>, geometry g: MatMulGeometry
) {
    if g.batch == 0 || g.m == 0 || g.k == 0 || g.n == 0 { return }
    if g.sharesRightOperand || g.batch == 1 {
        let rows = g.batch * g.m
        if let dA {
            BLAS.sgemm(
                transposeB: true, m: rows, n: g.k, k: g.n, a: dOutput, lda: g.n, b: b, ldb: g.n,
                beta: 1, c: dA, ldc: g.k)
        }
        if let dB {
            BLAS.sgemm(
                transposeA: true, m: g.k, n: g.n, k: rows, a: a, lda: g.k, b: dOutput, ldb: g.n,
                beta: 1, c: dB, ldc: g.n)
        }
        return
    }
    for item in 0..<g.batch {
        let aItem = a + item * g.m * g.k
        let bItem = b + item * g.k * g.n
        let dOutItem = dOutput + item * g.m * g.n
        if let dA {
            BLAS.sgemm(
                transposeB: true, m: g.m, n: g.k, k: g.n, a: dOutItem, lda: g.n, b: bItem, ldb: g.n,
                beta: 1, c: dA + item * g.m * g.k, ldc: g.k)
        }
        if let dB {
            BLAS.sgemm(
                transposeA: true, m: g.k, n: g.n, k: g.m, a: aItem, lda: g.k, b: dOutItem, ldb: g.n,
                beta: 1, c: dB + item * g.k * g.n, ldc: g.n)
        }
    }
}

// MARK: - linear layer: y = x W^T + b

/// `output[r, o] = Σ_c x[r, c] · weight[o, c] + bias[o]` for r < rows (x: rows x C, weight: O x C).
/// Overwrites `output` (rows x O). The weight is read transposed by BLAS, never copied.
public func linearForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, rows: Int, inputFeatures c: Int, outputFeatures o: Int
) {
    guard rows > 0, o > 0 else { return }
    if let bias {
        // C starts as the broadcast bias and the product adds to it (beta = 1): no second pass.
        parallelChunks(rows, minimumPerThread: max(1, 16384 / o)) { range in
            for r in range { (output + r * o).update(from: bias, count: o) }
        }
    }
    if c == 0 {
        if bias == nil { output.update(repeating: 0, count: rows * o) }
        return
    }
    BLAS.sgemm(
        transposeB: true, m: rows, n: o, k: c, a: input, lda: c, b: weight, ldb: c, beta: bias == nil ? 0 : 1,
        c: output, ldc: o)
}

/// Accumulates the gradients of `output = x W^T + b` (each pointer may be nil when not needed).
///
/// In the forward pass: `y[r,o] = Σ_c x[r,c] W[o,c] + b[o]`, so
/// `dx[r,c] += Σ_o dy[r,o] W[o,c]` (dx += dy · W), `dW[o,c] += Σ_r dy[r,o] x[r,c]` (dW += dyᵀ · x)
/// and `db[o] += Σ_r dy[r,o]`.
public func linearBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inputFeatures c: Int, outputFeatures o: Int
) {
    guard rows > 0, o > 0 else { return }
    if let dInput, c > 0 {
        BLAS.sgemm(m: rows, n: c, k: o, a: dOutput, lda: o, b: weight, ldb: c, beta: 1, c: dInput, ldc: c)
    }
    if let dWeight, c > 0 {
        BLAS.sgemm(
            transposeA: true, m: o, n: c, k: rows, a: dOutput, lda: o, b: input, ldb: c, beta: 1, c: dWeight, ldc: c)
    }
    if let dBias {
        for r in 0..<rows {
            let row = dOutput + r * o
            for j in 0..<o { dBias[j] += row[j] }
        }
    }
}
