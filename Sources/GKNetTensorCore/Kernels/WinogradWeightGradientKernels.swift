// The weight gradient of a 3x3 stride-1 convolution through the F(4x4, 3x3) Winograd transforms of
// WinogradConvolutionKernels.swift. The forward pass computed every 4x4 output tile as
//     Y_t = A^T [ (G w G^T) ⊙ (B^T d_t B) ] A,
// linear in w, so its adjoint is
//     dW = G^T [ sum_t (A dY_t A^T) ⊙ (B^T d_t B) ] G
// (d_t: the 6x6 zero-padded input patch of tile t, dY_t: the 4x4 output-gradient tile, zero beyond
// Ho x Wo). The sum over tiles becomes 36 GEMMs with the tiles as the reduction dimension,
//     M[ξ] (O x C) += P[ξ] (O x tiles) . V[ξ]^T (tiles x C),   P[ξ][o][t] = (A dY_t A^T)[a, b],
// V exactly the forward pass's input transform: a quarter of the direct method's multiplications,
// like the forward pass. Rounding: ~1e-5 of the gradient's largest magnitude (tests).
//
// Legend (Shape.swift): N batch, C input channels, O output channels, Ho x Wo output, tiles (per
// block), ξ = 6a + b one of the 36 transform-domain positions.
//
// Threads: the tile blocks (whole tile rows of one image) are split over W workers; each worker
// transforms its blocks and accumulates its own M with single-threaded GEMMs; the W partial sums are
// then added in worker order (deterministic for a given thread count) and transformed back.

/// Backward-weights F(4x4, 3x3): `dWeight (= or +=) sum_{n,y,x} dOut[n,o,y,x] * in[n,c,y-p+i,x-p+j]`
/// (requires `winogradSupports(geometry)`).
/// - Parameters:
///   - tileRowsPerBlock: tile rows per block (default as the forward pass); for tests.
///   - lanes: which loops the transforms run (default: `WinogradLanes(tilesX:)`); for tests.
public func winogradConvolutionBackwardWeights(
    dWeight: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
    geometry g: ConvolutionGeometry, accumulate: Bool, tileRowsPerBlock: Int? = nil, lanes: WinogradLanes? = nil
) {
    precondition(winogradSupports(g), "winogradConvolutionBackwardWeights: unsupported geometry \(g)")
    if g.batch == 0 {
        if !accumulate { dWeight.update(repeating: 0, count: g.weightCount) }
        return
    }
    let (c, o) = (g.inputChannels, g.outputChannels)
    let tilesX = (g.outputWidth + 3) / 4, tilesY = (g.outputHeight + 3) / 4
    let targetTiles = max(128, (1 << 18) / (36 * c))
    let rowsPerBlock = max(1, min(tilesY, tileRowsPerBlock ?? (targetTiles + tilesX - 1) / tilesX))
    let blocks = (0..<g.batch).flatMap { n in
        stride(from: 0, to: tilesY, by: rowsPerBlock).map { (image: n, rows: $0..<min(tilesY, $0 + rowsPerBlock)) }
    }
    let blockTiles = rowsPerBlock * tilesX
    let lanes = lanes ?? WinogradLanes(tilesX: tilesX)
    let workers = min(Threading.count, blocks.count)
    let perWorker = (blocks.count + workers - 1) / workers
    let transformSize = 36 * o * c
    let pool = ScratchPool.shared
    pool.withBuffer(workers * transformSize) { sums in
        parallelChunks(workers, minimumPerThread: 1) { range in
            withBLASOnCallingThread {
                pool.withBuffer(36 * c * blockTiles) { v in
                    pool.withBuffer(36 * o * blockTiles) { p in
                        pool.withBuffer(winogradScratchCount(rowsPerBlock: rowsPerBlock, tilesX: tilesX)) { scratch in
                            for worker in range {
                                let m = sums + worker * transformSize
                                m.update(repeating: 0, count: transformSize)
                                for block in blocks[
                                    min(blocks.count, worker * perWorker)..<min(blocks.count, (worker + 1) * perWorker)]
                                {
                                    let tiles = block.rows.count * tilesX
                                    winogradTransformInput(
                                        input + block.image * c * g.inputHeight * g.inputWidth, into: v,
                                        tileRows: block.rows,
                                        tilesX: tilesX, ldv: tiles, scratch: scratch, geometry: g, lanes: lanes.input)
                                    winogradTransformOutputGradient(
                                        dOutput + block.image * o * g.outputHeight * g.outputWidth, into: p,
                                        tileRows: block.rows,
                                        tilesX: tilesX, ldp: tiles, scratch: scratch, geometry: g,
                                        lanes: lanes.outputGradient)
                                    for xi in 0..<36 {
                                        BLAS.sgemm(
                                            transposeB: true, m: o, n: c, k: tiles, a: p + xi * o * tiles, lda: tiles,
                                            b: v + xi * c * tiles, ldb: tiles, beta: 1, c: m + xi * o * c, ldc: c)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for worker in 1..<workers {
            let partial = sums + worker * transformSize
            for k in 0..<transformSize { sums[k] += partial[k] }
        }
        winogradTransformWeightGradient(
            sums, into: dWeight, outputChannels: o, inputChannels: c, accumulate: accumulate)
    }
}

/// The 1-D transform A applied elementwise to four vectors (rows of a 4x4 tile): `out.a` receives
/// (A y)_a with A = (A^T)^T, the transpose of the forward output transform:
///     A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
@inline(__always)
private func outputGradientTransform1D(
    _ y: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>), _ out: SixOutputRows,
    count: Int
) {
    let (y0, y1, y2, y3) = y
    let (o0, o1, o2, o3, o4, o5) = out
    for k in 0..<count { o0[k] = y0[k] }
    for k in 0..<count { o1[k] = (y0[k] + y2[k]) + (y1[k] + y3[k]) }
    for k in 0..<count { o2[k] = (y0[k] + y2[k]) - (y1[k] + y3[k]) }
    for k in 0..<count { o3[k] = (y0[k] + 4 * y2[k]) + (2 * y1[k] + 8 * y3[k]) }
    for k in 0..<count { o4[k] = (y0[k] + 4 * y2[k]) - (2 * y1[k] + 8 * y3[k]) }
    for k in 0..<count { o5[k] = y3[k] }
}

/// P[ξ = 6a + b][o][t] = (A dY_t A^T)[a, b] for the tiles of `tileRows` (t = (ty - ty0)*tilesX + tx),
/// dY_t the 4x4 block of dOut[o] at (4ty, 4tx), zero beyond Ho x Wo. Each output-gradient row is
/// split into its four phases (x mod 4), so the horizontal transform runs on contiguous vectors over
/// the tiles, then the vertical transform on whole rows of the result. On `lanes`: four tiles at a
/// time, their 6x6 results in registers.
@inline(never)
private func winogradTransformOutputGradient(
    _ dOutput: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>, tileRows: Range<Int>, tilesX: Int, ldp: Int,
    scratch: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, lanes: Bool
) {
    if lanes {
        winogradTransformOutputGradientOnLanes(
            dOutput, into: p, tileRows: tileRows, tilesX: tilesX, ldp: ldp, geometry: g)
        return
    }
    let (outHeight, outWidth, channels) = (g.outputHeight, g.outputWidth, g.outputChannels)
    let phases = scratch  // 4 x tilesX: phase j holds dOut[o, y, 4tx + j]
    let horizontal = scratch + 4 * tilesX  // (6b + i) x tilesX: (dY_t A^T)[i, b] of one tile row
    for oc in 0..<channels {
        let plane = dOutput + oc * outHeight * outWidth
        for ty in tileRows {
            for i in 0..<4 {
                let y = 4 * ty + i
                if y >= outHeight {
                    for b in 0..<6 { (horizontal + (6 * b + i) * tilesX).update(repeating: 0, count: tilesX) }
                    continue
                }
                let row = plane + y * outWidth
                for j in 0..<4 {
                    let phase = phases + j * tilesX
                    let count = min(tilesX, (outWidth - j + 3) / 4)  // tiles whose column 4tx + j exists
                    for tx in 0..<count { phase[tx] = row[4 * tx + j] }
                    for tx in count..<tilesX { phase[tx] = 0 }
                }
                let out = horizontal + i * tilesX, step = 6 * tilesX
                let rows = UnsafePointer(phases)
                outputGradientTransform1D(
                    (rows, rows + tilesX, rows + 2 * tilesX, rows + 3 * tilesX),
                    (out, out + step, out + 2 * step, out + 3 * step, out + 4 * step, out + 5 * step), count: tilesX)
            }
            let t0 = (ty - tileRows.lowerBound) * tilesX
            for b in 0..<6 {
                let rows = UnsafePointer(horizontal + 6 * b * tilesX)
                let out = p + (b * channels + oc) * ldp + t0, step = 6 * channels * ldp  // ξ = 6a + b, a = 0..<6
                outputGradientTransform1D(
                    (rows, rows + tilesX, rows + 2 * tilesX, rows + 3 * tilesX),
                    (out, out + step, out + 2 * step, out + 3 * step, out + 4 * step, out + 5 * step), count: tilesX)
            }
        }
    }
}

/// The 1-D transform A on four lane vectors (`outputGradientTransform1D`'s arithmetic, in its order).
@inline(__always)
private func outputGradientTransformLanes(
    _ y0: SIMD4<Float>, _ y1: SIMD4<Float>, _ y2: SIMD4<Float>, _ y3: SIMD4<Float>
)
    -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)
{
    let s02 = y0 + y2, s13 = y1 + y3, w02 = y0 + 4 * y2, w13 = 2 * y1 + 8 * y3
    return (y0, s02 + s13, s02 - s13, w02 + w13, w02 - w13, y3)
}

/// `winogradTransformOutputGradient` four tiles at a time: the 4x4 output-gradient blocks of four
/// neighbouring tiles are read as SIMD4 lanes (a 4x4 transpose where all 16 columns exist, zeros
/// beyond Ho x Wo), and A dY A^T is computed in registers.
@inline(never)
private func winogradTransformOutputGradientOnLanes(
    _ dOutput: UnsafePointer<Float>, into p: UnsafeMutablePointer<Float>, tileRows: Range<Int>, tilesX: Int, ldp: Int,
    geometry g: ConvolutionGeometry
) {
    typealias Lanes = SIMD4<Float>
    let (outHeight, outWidth, channels) = (g.outputHeight, g.outputWidth, g.outputChannels)
    let step = channels * ldp  // from P[ξ] to P[ξ + 1]
    for oc in 0..<channels {
        let plane = dOutput + oc * outHeight * outWidth
        for ty in tileRows {
            let base = p + oc * ldp + (ty - tileRows.lowerBound) * tilesX
            for tx in Swift.stride(from: 0, to: tilesX, by: 4) {
                let count = min(4, tilesX - tx)
                // Row i of the four tiles' dY, transformed: (dY_t A^T)[i, b] for b = 0..<6.
                @inline(__always) func tileRow(_ i: Int) -> (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes) {
                    let y = 4 * ty + i
                    guard y < outHeight else { return (.zero, .zero, .zero, .zero, .zero, .zero) }
                    let row = plane + y * outWidth + 4 * tx
                    var (j0, j1, j2, j3) = (Lanes.zero, Lanes.zero, Lanes.zero, Lanes.zero)
                    if 4 * (tx + 4) <= outWidth {
                        (j0, j1, j2, j3) = transposed4x4(load4(row), load4(row + 4), load4(row + 8), load4(row + 12))
                    } else {
                        for lane in 0..<count {
                            let x = 4 * (tx + lane)
                            if x < outWidth { j0[lane] = row[4 * lane] }
                            if x + 1 < outWidth { j1[lane] = row[4 * lane + 1] }
                            if x + 2 < outWidth { j2[lane] = row[4 * lane + 2] }
                            if x + 3 < outWidth { j3[lane] = row[4 * lane + 3] }
                        }
                    }
                    return outputGradientTransformLanes(j0, j1, j2, j3)
                }
                let (h0, h1, h2, h3) = (tileRow(0), tileRow(1), tileRow(2), tileRow(3))
                @inline(__always) func store(_ b: Int, _ a: (Lanes, Lanes, Lanes, Lanes, Lanes, Lanes)) {
                    let out = base + b * step + tx  // P[6a + b] for a = 0..<6
                    store4(a.0, out, count: count)
                    store4(a.1, out + 6 * step, count: count)
                    store4(a.2, out + 12 * step, count: count)
                    store4(a.3, out + 18 * step, count: count)
                    store4(a.4, out + 24 * step, count: count)
                    store4(a.5, out + 30 * step, count: count)
                }
                store(0, outputGradientTransformLanes(h0.0, h1.0, h2.0, h3.0))
                store(1, outputGradientTransformLanes(h0.1, h1.1, h2.1, h3.1))
                store(2, outputGradientTransformLanes(h0.2, h1.2, h2.2, h3.2))
                store(3, outputGradientTransformLanes(h0.3, h1.3, h2.3, h3.3))
                store(4, outputGradientTransformLanes(h0.4, h1.4, h2.4, h3.4))
                store(5, outputGradientTransformLanes(h0.5, h1.5, h2.5, h3.5))
            }
        }
    }
}

/// dW[o, c] (= or +=) G^T M[o, c] G, M[o, c] the 6x6 matrix M[ξ = 6a + b][o][c]; G is 6 x 3:
///     G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1].
private func winogradTransformWeightGradient(
    _ m: UnsafePointer<Float>, into dWeight: UnsafeMutablePointer<Float>, outputChannels o: Int, inputChannels c: Int,
    accumulate: Bool
) {
    // (G^T u)_i for a 6-vector u: the three columns of G.
    @inline(__always) func applyGT(_ u: (Float, Float, Float, Float, Float, Float)) -> (Float, Float, Float) {
        (
            u.0 / 4 - (u.1 + u.2) / 6 + (u.3 + u.4) / 24,
            (u.2 - u.1) / 6 + (u.3 - u.4) / 12,
            -(u.1 + u.2) / 6 + (u.3 + u.4) / 6 + u.5
        )
    }
    let step = o * c
    parallelChunks(o, minimumPerThread: max(1, 256 / max(1, c))) { range in
        for oc in range {
            for ic in 0..<c {
                let base = m + oc * c + ic
                @inline(__always) func row(_ a: Int) -> (Float, Float, Float) {
                    let r = base + 6 * a * step
                    return applyGT((r[0], r[step], r[2 * step], r[3 * step], r[4 * step], r[5 * step]))  // (M G)[a, :]
                }
                let (r0, r1, r2, r3, r4, r5) = (row(0), row(1), row(2), row(3), row(4), row(5))
                let col0 = applyGT((r0.0, r1.0, r2.0, r3.0, r4.0, r5.0))
                let col1 = applyGT((r0.1, r1.1, r2.1, r3.1, r4.1, r5.1))
                let col2 = applyGT((r0.2, r1.2, r2.2, r3.2, r4.2, r5.2))
                let w = dWeight + (oc * c + ic) * 9
                if accumulate {
                    w[0] += col0.0
                    w[1] += col1.0
                    w[2] += col2.0
                    w[3] += col0.1
                    w[4] += col1.1
                    w[5] += col2.1
                    w[6] += col0.2
                    w[7] += col1.2
                    w[8] += col2.2
                } else {
                    w[0] = col0.0
                    w[1] = col1.0
                    w[2] = col2.0
                    w[3] = col0.1
                    w[4] = col1.1
                    w[5] = col2.1
                    w[6] = col0.2
                    w[7] = col1.2
                    w[8] = col2.2
                }
            }
        }
    }
}
