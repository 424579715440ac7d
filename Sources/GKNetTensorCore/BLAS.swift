// The only file that knows which BLAS is linked: OpenBLAS on Linux, Accelerate on Apple platforms.
#if canImport(Accelerate)
import Accelerate
#else
import CGKNetBLAS
#endif

/// Single-precision matrix multiplication through the platform BLAS.
public enum BLAS {
    /// Row-major `C = alpha * op(A) * op(B) + beta * C` with op = transpose when asked.
    /// A is M x K (K x M if transposed), B is K x N (N x K if transposed), C is M x N.
    @inlinable
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Sets the BLAS thread count (no-op with Accelerate).
    static func setThreads(_ threads: Int) {
        #if !canImport(Accelerate)
        openblas_set_num_threads(Int32(threads))
        #endif
    }
}
