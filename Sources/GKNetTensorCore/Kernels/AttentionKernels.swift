// Token attention (queries at every position of a feature map, keys and values from a small
// token set), computed in tiles of positions: the HW x L attention matrix of one head never
// exists in full, each tile's logits stay in cache between the two GEMMs and the softmax, and
// the backward pass recomputes the tile's probabilities from the saved log-sum-exp (the
// flash-attention recipe). Channel-major queries and outputs, so no permute copies are needed.
// Legend (Shape.swift): N batch, heads, Dq query/key width, Dv value width, HW positions (H·W), L tokens.
import Foundation

/// Shapes of a token attention: queries N x heads x Dq x HW, keys N x heads x L x Dq, values
/// N x heads x L x Dv.
public struct TokenAttentionGeometry: Equatable, Sendable {
    public var batch: Int
    public var heads: Int
    public var queryWidth: Int
    public var valueWidth: Int
    public var positions: Int
    public var tokens: Int

    /// Positions per tile (the kernels hold tile x L logits per thread).
    public var tileSize: Int

    /// - Parameter tileSize: positions per tile; by default as many as keep a tile's logits within
    ///   128 KiB (well inside a core's L2), at least 16.
    public init(
        batch: Int, heads: Int, queryWidth: Int, valueWidth: Int, positions: Int, tokens: Int, tileSize: Int? = nil
    ) {
        self.batch = batch
        self.heads = heads
        self.queryWidth = queryWidth
        self.valueWidth = valueWidth
        self.positions = positions
        self.tokens = tokens
        self.tileSize = max(1, tileSize ?? max(16, min(positions, 32768 / max(1, tokens))))
    }

    var tilesPerHead: Int { (positions + tileSize - 1) / tileSize }
    var queryCount: Int { batch * heads * queryWidth * positions }
    var keyCount: Int { batch * heads * tokens * queryWidth }
    var valueCount: Int { batch * heads * tokens * valueWidth }
    var outputCount: Int { batch * heads * valueWidth * positions }
    /// Rows of the log-sum-exp the forward pass saves for the backward pass (N x heads x HW).
    var rowCount: Int { batch * heads * positions }
}

/// The pointers of one (n, head) pair.
private struct HeadOperands {
    let queries: UnsafePointer<Float>  // Dq x HW
    let keys: UnsafePointer<Float>  // L x Dq
    let values: UnsafePointer<Float>  // L x Dv
    let bias: UnsafePointer<Float>?  // L
}

extension TokenAttentionGeometry {
    fileprivate func operands(
        _ pair: Int, queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?
    ) -> HeadOperands {
        HeadOperands(
            queries: queries + pair * queryWidth * positions, keys: keys + pair * tokens * queryWidth,
            values: values + pair * tokens * valueWidth, bias: bias.map { $0 + (pair / heads) * tokens })
    }

    /// logits[r, t] = scale * Σ_d Q[d, s0 + r] K[t, d] (+ bias[t]) for r < rows, in `logits` (rows x L).
    fileprivate func tileLogits(
        _ logits: UnsafeMutablePointer<Float>, _ head: HeadOperands, start: Int, rows: Int, scale: Float
    ) {
        BLAS.sgemm(
            transposeA: true, transposeB: true, m: rows, n: tokens, k: queryWidth, alpha: scale,
            a: head.queries + start, lda: positions, b: head.keys, ldb: queryWidth, c: logits, ldc: tokens)
        guard let bias = head.bias else { return }
        for r in 0..<rows {
            let row = logits + r * tokens
            for t in 0..<tokens { row[t] += bias[t] }
        }
    }
}

/// Forward: P[s, :] = softmax_t(scale Σ_d Q[d, s] K[t, d] + bias[t]); out[e, s] = Σ_t P[s, t] V[t, e],
/// per (n, head). Overwrites `output` (N x heads x Dv x HW) and, if given, `logSumExp` (N x heads x HW:
/// max_t + log Σ_t exp(logit - max), what the backward pass needs to rebuild P).
public func tokenAttentionForward(
    output: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>?, queries: UnsafePointer<Float>,
    keys: UnsafePointer<Float>, values: UnsafePointer<Float>, bias: UnsafePointer<Float>?, scale: Float,
    geometry g: TokenAttentionGeometry
) {
    let (tile, tiles, tokens) = (g.tileSize, g.tilesPerHead, g.tokens)
    if tokens == 0 { output.update(repeating: 0, count: g.outputCount) }  // an empty sum
    guard g.positions > 0, tokens > 0 else { return }
    // Tiles are spread over the threads; each runs its GEMMs on its own thread (single-threaded BLAS).
    parallelChunks(g.batch * g.heads * tiles, minimumPerThread: 1) { items in
        withBLASOnCallingThread {
            let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: tile * tokens + tile)
            defer { probabilities.deallocate() }
            let inverseTotals = probabilities + tile * tokens
            for item in items {
                let (pair, start) = (item / tiles, (item % tiles) * tile)
                let rows = min(tile, g.positions - start)
                let head = g.operands(pair, queries: queries, keys: keys, values: values, bias: bias)
                g.tileLogits(probabilities, head, start: start, rows: rows, scale: scale)
                // Unnormalised: e = exp(logit - max) per row; the 1 / Σ e goes onto the output columns
                // below (Dv multiplies per position instead of L).
                for r in 0..<rows {
                    let row = probabilities + r * tokens
                    let largest = maximum(row, count: tokens)
                    exponentialsInPlace(row, count: tokens, shift: largest)
                    let total = sumInDouble(row, count: tokens)
                    inverseTotals[r] = Float(1 / total)
                    logSumExp?[pair * g.positions + start + r] = largest + Float(Foundation.log(total))
                }
                // out[:, s0 ..< s0 + rows] = V^T (Dv x L) · E^T (L x rows), then each column / Σ e
                let out = output + pair * g.valueWidth * g.positions + start
                BLAS.sgemm(
                    transposeA: true, transposeB: true, m: g.valueWidth, n: rows, k: tokens,
                    a: head.values, lda: g.valueWidth, b: probabilities, ldb: tokens, c: out, ldc: g.positions)
                for e in 0..<g.valueWidth {
                    let column = out + e * g.positions
                    for r in 0..<rows { column[r] *= inverseTotals[r] }
                }
            }
        }
    }
}

/// Backward of `tokenAttentionForward`. Writes `dQueries` (overwrites, N x heads x Dq x HW) and
/// accumulates `dKeys` and `dValues` (+=); each may be nil when not needed. The bias gets no gradient.
///
/// In the forward pass, per (n, head): Z = scale Q^T K^T + bias, P = softmax rows of Z, O = V^T P^T. So
/// - dP[s, t] = Σ_e dO[e, s] V[t, e] and dV[t, e] += Σ_s P[s, t] dO[e, s];
/// - dZ[s, t] = P[s, t] (dP[s, t] - Σ_u dP[s, u] P[s, u]) (the softmax Jacobian);
/// - dQ[d, s] = scale Σ_t dZ[s, t] K[t, d] and dK[t, d] += scale Σ_s dZ[s, t] Q[d, s].
/// P is rebuilt per tile as exp(Z - logSumExp).
/// Long: one fused pass per tile (rebuild P, dP, dZ, then dQ, dK, dV) keeps the tile's intermediates
/// in cache; split into functions they would be written out and re-read per step.
public func tokenAttentionBackward(
    dQueries: UnsafeMutablePointer<Float>?, dKeys: UnsafeMutablePointer<Float>?, dValues: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, queries: UnsafePointer<Float>, keys: UnsafePointer<Float>,
    values: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, logSumExp: UnsafePointer<Float>, scale: Float, geometry g: TokenAttentionGeometry
) {
    let (tile, tiles, tokens) = (g.tileSize, g.tilesPerHead, g.tokens)
    guard g.positions > 0, tokens > 0 else { return }
    let pairs = g.batch * g.heads
    // Each (pair, split) item owns a run of tiles and its own dK / dV partial sums.
    let splits = min(tiles, max(1, (Threading.count + pairs - 1) / pairs))
    let (keyBlock, valueBlock) = (tokens * g.queryWidth, tokens * g.valueWidth)
    let partialWidth = keyBlock + valueBlock
    let partials = UnsafeMutablePointer<Float>.allocate(capacity: pairs * splits * partialWidth)
    partials.initialize(repeating: 0, count: pairs * splits * partialWidth)
    defer { partials.deallocate() }
    parallelChunks(pairs * splits, minimumPerThread: 1) { items in
        withBLASOnCallingThread {
            let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: 2 * tile * tokens)
            defer { probabilities.deallocate() }
            let dLogits = probabilities + tile * tokens
            for item in items {
                let (pair, split) = (item / splits, item % splits)
                let head = g.operands(pair, queries: queries, keys: keys, values: values, bias: bias)
                let dOut = dOutput + pair * g.valueWidth * g.positions
                let (dKeyPartial, dValuePartial) = (
                    partials + item * partialWidth, partials + item * partialWidth + keyBlock
                )
                for tileIndex in (split * tiles / splits)..<((split + 1) * tiles / splits) {
                    let start = tileIndex * tile
                    let rows = min(tile, g.positions - start)
                    g.tileLogits(probabilities, head, start: start, rows: rows, scale: scale)
                    for r in 0..<rows {
                        let row = probabilities + r * tokens
                        exponentialsInPlace(row, count: tokens, shift: logSumExp[pair * g.positions + start + r])
                    }
                    // dP (rows x L) = dO_tile^T (rows x Dv) · V^T (Dv x L)
                    BLAS.sgemm(
                        transposeA: true, transposeB: true, m: rows, n: tokens, k: g.valueWidth,
                        a: dOut + start, lda: g.positions, b: head.values, ldb: g.valueWidth, c: dLogits, ldc: tokens)
                    // dV (L x Dv) += P^T (L x rows) · dO_tile^T (rows x Dv)
                    BLAS.sgemm(
                        transposeA: true, transposeB: true, m: tokens, n: g.valueWidth, k: rows,
                        a: probabilities, lda: tokens, b: dOut + start, ldb: g.positions, beta: 1, c: dValuePartial,
                        ldc: g.valueWidth)
                    for r in 0..<rows {
                        let (p, dp) = (probabilities + r * tokens, dLogits + r * tokens)
                        let dot = dotProduct(p, dp, count: tokens)
                        for t in 0..<tokens { dp[t] = scale * p[t] * (dp[t] - dot) }
                    }
                    if let dQueries {
                        // dQ[:, tile] (Dq x rows) = K^T (Dq x L) · dZ^T (L x rows)
                        BLAS.sgemm(
                            transposeA: true, transposeB: true, m: g.queryWidth, n: rows, k: tokens,
                            a: head.keys, lda: g.queryWidth, b: dLogits, ldb: tokens,
                            c: dQueries + pair * g.queryWidth * g.positions + start, ldc: g.positions)
                    }
                    // dK (L x Dq) += dZ^T (L x rows) · Q_tile^T (rows x Dq)
                    BLAS.sgemm(
                        transposeA: true, transposeB: true, m: tokens, n: g.queryWidth, k: rows,
                        a: dLogits, lda: tokens, b: head.queries + start, ldb: g.positions, beta: 1, c: dKeyPartial,
                        ldc: g.queryWidth)
                }
            }
        }
    }
    // Sum the splits of each pair into the gradients.
    for pair in 0..<pairs {
        for split in 0..<splits {
            let partial = partials + (pair * splits + split) * partialWidth
            if let dKeys {
                let target = dKeys + pair * keyBlock
                for i in 0..<keyBlock { target[i] += partial[i] }
            }
            if let dValues {
                let target = dValues + pair * valueBlock
                for i in 0..<valueBlock { target[i] += partial[keyBlock + i] }
            }
        }
    }
}
