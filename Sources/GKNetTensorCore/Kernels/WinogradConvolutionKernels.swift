// Winograd F(4x4, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016) for 3x3, stride-1, undilated, ungrouped convolutions: every 4x4 output tile is
//     Y = A^T [ (G w G^T) ⊙ (B^T d B) ] A
// with d the 6x6 input patch at (4ty - p, 4tx - p). The elementwise product summed over input
// channels becomes 36 GEMMs, M[ξ] (O x tiles) = U[ξ] (O x C) . V[ξ] (C x tiles), with 36/144 = 1/4 of the
// direct method's multiplications. Tiles are processed in blocks of whole tile rows so that V and M
// stay a few MB. Interpolation points 0, ±1, ±2, ∞: rounding error is ~10x the direct method's
// (about 1e-5 relative to the output's largest magnitude), see docs/benchmarks.md.
//
// Legend (Shape.swift): N batch, C input channels, O output channels, H x W input, Ho x Wo output,
// p padding, tiles (per block), ξ = 6a + b one of the 36 transform-domain positions.
//
// Threads: blocks are spread over the threads (parallelChunks); inside a block everything runs on
// its thread, the GEMMs included (`withBLASOnCallingThread`), so the transforms and GEMMs of a
// block share that core's caches.
import Foundation

/// Whether the Winograd kernel handles a geometry (3x3, stride 1, dilation 1, one group, padding
/// at most 2, and enough channels for the 36 GEMMs to pay off).
public func winogradSupports(_ g: ConvolutionGeometry) -> Bool {
    g.kernelSize == 3 && g.stride == 1 && g.dilation == 1 && g.groups == 1 && g.padding <= 2
        && g.inputChannels >= 16 && g.outputChannels >= 16 && g.outputHeight >= 4 && g.outputWidth >= 4
        && g.outputHeight == g.inputHeight + 2 * g.padding - 2 && g.outputWidth == g.inputWidth + 2 * g.padding - 2
}

/// Forward F(4x4, 3x3) convolution: `output (= or +=) conv(input, weight) + bias` (see
/// `ConvolutionGeometry`; requires `winogradSupports(geometry)`).
/// - Parameters:
///   - tileRowsPerBlock: tile rows transformed per block (default: V of about 1 MB);
///     exposed so tests can force several blocks.
///   - lanes: which loops the transforms run (default: `WinogradLanes(tilesX:)`); for tests.
public func winogradConvolutionForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, geometry g: ConvolutionGeometry, accumulate: Bool = false,
    tileRowsPerBlock: Int? = nil,
    cachesTransformedWeights: Bool = true, lanes: WinogradLanes? = nil
) {
    precondition(winogradSupports(g), "winogradConvolutionForward: unsupported geometry \(g)")
    let (c, o) = (g.inputChannels, g.outputChannels)
    let tilesX = (g.outputWidth + 3) / 4, tilesY = (g.outputHeight + 3) / 4
    // Blocks of whole tile rows: V about 1 MB (it stays in L2 between the transform and the
    // GEMMs; measured best at 64 channels), but at least 128 tiles so the GEMMs stay efficient,
    // and smaller blocks when there would be fewer than two per thread.
    let targetTiles = max(128, (1 << 18) / (36 * c))
    var rowsPerBlock = max(1, min(tilesY, tileRowsPerBlock ?? (targetTiles + tilesX - 1) / tilesX))
    while tileRowsPerBlock == nil && rowsPerBlock > 1
        && g.batch * ((tilesY + rowsPerBlock - 1) / rowsPerBlock) < 2 * Threading.count
    {
        rowsPerBlock = (rowsPerBlock + 1) / 2
    }
    let blocks = (0..<g.batch).flatMap { n in
        stride(from: 0, to: tilesY, by: rowsPerBlock).map { (image: n, rows: $0..<min(tilesY, $0 + rowsPerBlock)) }
    }
    let blockTiles = rowsPerBlock * tilesX
    let lanes = lanes ?? WinogradLanes(tilesX: tilesX)
    let pool = ScratchPool.shared
    WinogradWeightCache.shared.withTransformedWeights(
        weight, outputChannels: o, inputChannels: c, caching: cachesTransformedWeights
    ) { u in
        parallelChunks(blocks.count, minimumPerThread: 1) { range in
            withBLASOnCallingThread {
                pool.withBuffer(36 * c * blockTiles) { v in
                    pool.withBuffer(36 * o * blockTiles) { m in
                        pool.withBuffer(winogradScratchCount(rowsPerBlock: rowsPerBlock, tilesX: tilesX)) { scratch in
                            for block in blocks[range] {
                                let tiles = block.rows.count * tilesX
                                winogradTransformInput(
                                    input + block.image * c * g.inputHeight * g.inputWidth, into: v,
                                    tileRows: block.rows,
                                    tilesX: tilesX, ldv: tiles, scratch: scratch, geometry: g, lanes: lanes.input)
                                for xi in 0..<36 {
                                    BLAS.sgemm(
                                        m: o, n: tiles, k: c, a: u + xi * o * c, lda: c, b: v + xi * c * tiles,
                                        ldb: tiles,
                                        c: m + xi * o * tiles, ldc: tiles)
                                }
                                winogradTransformOutput(
                                    m, into: output + block.image * o * g.outputHeight * g.outputWidth, bias: bias,
                                    tileRows: block.rows, tilesX: tilesX, ldm: tiles, scratch: scratch, geometry: g,
                                    accumulate: accumulate, lanes: lanes.output)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The convolution whose forward pass is the backward-data pass of `g` (stride 1, 3x3): from dOut
/// (O channels, Ho x Wo) to dIn (C channels, H x W) with padding 2 - p.
private func backwardDataGeometry(_ g: ConvolutionGeometry) -> ConvolutionGeometry {
    ConvolutionGeometry(
        batch: g.batch, inputChannels: g.outputChannels, inputHeight: g.outputHeight, inputWidth: g.outputWidth,
        outputChannels: g.inputChannels, kernelSize: 3, padding: 2 - g.padding)
}

/// Whether `winogradConvolutionBackwardData` handles a geometry.
public func winogradSupportsBackwardData(_ g: ConvolutionGeometry) -> Bool {
    winogradSupports(g) && winogradSupports(backwardDataGeometry(g))
}

/// Backward-data through Winograd: for stride 1 the input gradient is itself a 3x3 convolution,
/// `dIn = conv(dOut, w')` with `w'[c, o, i, j] = w[o, c, 2 - i, 2 - j]` and padding 2 - p.
/// Accumulates (`+=`) unless `accumulate` is false. Requires `winogradSupportsBackwardData(geometry)`.
public func winogradConvolutionBackwardData(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    geometry g: ConvolutionGeometry, accumulate: Bool, lanes: WinogradLanes? = nil
) {
    let (c, o) = (g.inputChannels, g.outputChannels)
    let flipped = UnsafeMutablePointer<Float>.allocate(capacity: g.weightCount)
    defer { flipped.deallocate() }
    for oc in 0..<o {
        for ic in 0..<c {
            for k in 0..<9 { flipped[(ic * o + oc) * 9 + k] = weight[(oc * c + ic) * 9 + 8 - k] }
        }
    }
    winogradConvolutionForward(
        output: dInput, input: dOutput, weight: flipped, bias: nil, geometry: backwardDataGeometry(g),
        accumulate: accumulate,
        cachesTransformedWeights: false, lanes: lanes)
}

/// Transformed weights U (36 x O x C) of recent forward calls, so that a layer whose weights did
/// not change (inference, evaluation, a benchmark loop) transforms them once instead of on every
/// call. An entry is found by the weight's address and the channel counts, and used only if it
/// keeps an exact copy of the weight values that equals the current ones (an O·C·9 comparison,
/// against the 36·O·C outputs and the arithmetic of a new transform), so a weight updated in place
/// by an optimizer, or a new tensor at a reused address, always gets a fresh transform. Entries are
/// immutable (a changed weight gets a new entry), so a call that is using one is never disturbed;
/// the least recently used ones are dropped above `capacityBytes`.
final class WinogradWeightCache: @unchecked Sendable {
    static let shared = WinogradWeightCache()
    /// Most bytes kept (weight copies + transforms; an entry is 5x its weight).
    var capacityBytes = 256 << 20
    /// Off (`RuntimeSettings.winogradWeightCache`): transforms on every call (A/B benchmarks, memory).
    let isEnabled = RuntimeSettings.current.winogradWeightCache

    final class Entry {
        let weights: UnsafeMutablePointer<Float>  // O·C·9, the values U was computed from
        let transformed: UnsafeMutablePointer<Float>  // 36·O·C
        let weightCount: Int
        var bytes: Int { (weightCount + 4 * weightCount) * MemoryLayout<Float>.size }
        init(weight: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int) {
            weightCount = o * c * 9
            weights = .allocate(capacity: weightCount)
            weights.update(from: weight, count: weightCount)
            transformed = .allocate(capacity: 36 * o * c)
            winogradTransformWeights(weight, into: transformed, outputChannels: o, inputChannels: c)
        }
        func matches(_ weight: UnsafePointer<Float>) -> Bool {
            memcmp(weights, weight, weightCount * MemoryLayout<Float>.size) == 0
        }
        deinit {
            weights.deallocate()
            transformed.deallocate()
        }
    }

    private struct Key: Hashable { var address: Int, outputChannels: Int, inputChannels: Int }
    private let lock = NSLock()
    private var entries: [Key: (entry: Entry, lastUse: Int)] = [:]
    private var clock = 0
    private var storedBytes = 0

    /// Runs `body` with U for `weight` (O x C x 3 x 3): cached, or transformed now (and cached
    /// when `caching`; otherwise into a scratch buffer).
    func withTransformedWeights(
        _ weight: UnsafePointer<Float>, outputChannels o: Int, inputChannels c: Int, caching: Bool,
        _ body: (UnsafePointer<Float>) -> Void
    ) {
        guard caching, isEnabled, 5 * o * c * 9 * MemoryLayout<Float>.size <= capacityBytes else {
            ScratchPool.shared.withBuffer(36 * o * c) { u in
                winogradTransformWeights(weight, into: u, outputChannels: o, inputChannels: c)
                body(u)
            }
            return
        }
        let key = Key(address: Int(bitPattern: weight), outputChannels: o, inputChannels: c)
        let found: Entry? = lock.withLock {
            clock += 1
            guard let hit = entries[key] else { return nil }
            entries[key] = (hit.entry, clock)
            return hit.entry
        }
        if let found, found.matches(weight) {
            withExtendedLifetime(found) { body(found.transformed) }
            return
        }
        let fresh = Entry(weight: weight, outputChannels: o, inputChannels: c)
        store(fresh, for: key)
        withExtendedLifetime(fresh) { body(fresh.transformed) }
    }

    private func store(_ entry: Entry, for key: Key) {
        lock.withLock {
            if let old = entries[key] { storedBytes -= old.entry.bytes }
            clock += 1
            entries[key] = (entry, clock)
            storedBytes += entry.bytes
            while storedBytes > capacityBytes, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                storedBytes -= oldest.value.entry.bytes
                entries[oldest.key] = nil
            }
        }
    }
}

/// U[ξ = 6a + b][o][c] = (G w[o, c] G^T)[a, b]; G is 6 x 3.
func winogradTransformWeights(
    _ weight: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>, outputChannels o: Int, inputChannels c: Int
) {
    // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1], applied
    // with multiplications by the rounded fractions: divisions by 6, 12 and 24 took most of this
    // function's time (it runs on every weight of every backward-data pass).
    let (sixth, twelfth, twentyFourth): (Float, Float, Float) = (1 / 6, 1 / 12, 1 / 24)
    @inline(__always) func applyG(_ g0: Float, _ g1: Float, _ g2: Float) -> (Float, Float, Float, Float, Float, Float) {
        let (even, odd) = (g0 * twentyFourth + g2 * sixth, g1 * twelfth)
        return (g0 / 4, -(g0 + g1 + g2) * sixth, -(g0 - g1 + g2) * sixth, even + odd, even - odd, g2)
    }
    parallelChunks(o, minimumPerThread: max(1, 256 / max(1, c))) { range in
        for oc in range {
            for ic in 0..<c {
                let w = weight + (oc * c + ic) * 9
                // columns of G w (6 x 3), then rows of (G w) G^T (6 x 6)
                let c0 = applyG(w[0], w[3], w[6]), c1 = applyG(w[1], w[4], w[7]), c2 = applyG(w[2], w[5], w[8])
                let step = o * c
                func store(_ a: Int, _ t: (Float, Float, Float, Float, Float, Float)) {
                    let base = u + (a * 6 * o + oc) * c + ic
                    base[0] = t.0
                    base[step] = t.1
                    base[2 * step] = t.2
                    base[3 * step] = t.3
                    base[4 * step] = t.4
                    base[5 * step] = t.5
                }
                store(0, applyG(c0.0, c1.0, c2.0))
                store(1, applyG(c0.1, c1.1, c2.1))
                store(2, applyG(c0.2, c1.2, c2.2))
                store(3, applyG(c0.3, c1.3, c2.3))
                store(4, applyG(c0.4, c1.4, c2.4))
                store(5, applyG(c0.5, c1.5, c2.5))
            }
        }
    }
}

/// Which loops the tile transforms run. A transform's 1-D passes either run along whole rows of
/// tiles (one loop per output row, vectorized by the compiler: best when a tile row is long), or
/// on SIMD4 lanes of four neighbouring tiles, with the whole 2-D transform of those tiles in
/// registers (no per-loop set-up: best on short rows, where the loops are only 1-4 vectors
/// long). Both do the same arithmetic in the same order, so they give the same bits.
public struct WinogradLanes: Sendable, Equatable {
    /// The input transform's horizontal pass on lanes.
    public var input: Bool
    /// The output transform on lanes.
    public var output: Bool
    /// The output-gradient transform (weight gradient) on lanes.
    public var outputGradient: Bool

    public init(input: Bool, output: Bool, outputGradient: Bool) {
        (self.input, self.output, self.outputGradient) = (input, output, outputGradient)
    }

    /// All on or all off.
    public init(all: Bool) { self.init(input: all, output: all, outputGradient: all) }

    /// The faster choice for a tile row of `tilesX` tiles, measured per transform on tile rows of
    /// 4 to 32 tiles (docs/benchmarks.md, "The Winograd transforms on lanes").
    public init(tilesX: Int) { self.init(input: tilesX <= 8, output: tilesX <= 16, outputGradient: tilesX <= 16) }
}

/// Floats of the transforms' scratch buffer for blocks of `rowsPerBlock` tile rows.
func winogradScratchCount(rowsPerBlock: Int, tilesX: Int) -> Int {
    // input: (4 rows + 2) padded rows + 6 vertical rows of 4 (tilesX + 1), plus 4 read past the end
    // by the lanes; output: 40 per tile.
    max((4 * rowsPerBlock + 8) * 4 * (tilesX + 1) + 4, 40 * rowsPerBlock * tilesX)
}

/// Six vectors (rows of a transform), passed without allocating.
typealias SixRows = (
    UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
    UnsafePointer<Float>
)
typealias SixOutputRows = (
    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>
)
typealias FourOutputRows = (
    UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>
)

/// Six rows `base + k*stride`.
@inline(__always)
private func sixRows(_ base: UnsafePointer<Float>, stride: Int) -> SixRows {
    (base, base + stride, base + 2 * stride, base + 3 * stride, base + 4 * stride, base + 5 * stride)
}

/// The 1-D input transform on six lane vectors (`inputTransform1D`'s arithmetic, in its order).
@inline(__always)
private func inputTransformLanes(
    _ d0: SIMD4<Float>, _ d1: SIMD4<Float>, _ d2: SIMD4<Float>, _ d3: SIMD4<Float>, _ d4: SIMD4<Float>,
    _ d5: SIMD4<Float>
) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = d3 - d1
    return (4 * d0 - 5 * d2 + d4, a + b, a - b, c + 2 * e, c - 2 * e, 4 * d1 - 5 * d3 + d5)
}

/// The 1-D input transform applied elementwise to six vectors of `count` elements: d_j is
/// `d.j`, and `out.m` receives (B^T d)_m with
///     B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
@inline(__always)
private func inputTransform1D(_ d: SixRows, _ out: SixOutputRows, count: Int) {
    // One loop per output row: a single store stream lets the compiler vectorize despite the
    // pointers possibly aliasing (it checks at run time).
    let (d0, d1, d2, d3, d4, d5) = d
    let (o0, o1, o2, o3, o4, o5) = out
    for k in 0..<count { o0[k] = 4 * d0[k] - 5 * d2[k] + d4[k] }
    for k in 0..<count { o1[k] = (d4[k] - 4 * d2[k]) + (d3[k] - 4 * d1[k]) }
    for k in 0..<count { o2[k] = (d4[k] - 4 * d2[k]) - (d3[k] - 4 * d1[k]) }
    for k in 0..<count { o3[k] = (d4[k] - d2[k]) + 2 * (d3[k] - d1[k]) }
    for k in 0..<count { o4[k] = (d4[k] - d2[k]) - 2 * (d3[k] - d1[k]) }
    for k in 0..<count { o5[k] = 4 * d1[k] - 5 * d3[k] + d5[k] }
}

/// V[ξ = 6l + m][ch][t] = (B^T d B)[l, m] for the tiles of `tileRows` (t = (ty - ty0)*tilesX + tx),
/// with d the 6x6 zero-padded patch of channel ch at rows 4ty - p ..< 4ty - p + 6, columns 4tx - p ...
/// Each padded input row is stored split into its four phases (x mod 4): the vertical transform is
/// elementwise along a row, so it runs on whole phase-split rows, and the horizontal transform then
/// reads d_j of consecutive tiles from contiguous phase arrays (on `lanes`: four tiles at a time,
/// the six outputs of each in registers). `scratch`: `winogradScratchCount` floats.
@inline(never)
func winogradTransformInput(
    _ input: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>, tileRows: Range<Int>, tilesX: Int, ldv: Int,
    scratch: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry, lanes: Bool
) {
    let (height, width, p, channels) = (g.inputHeight, g.inputWidth, g.padding, g.inputChannels)
    let phaseLength = tilesX + 1  // tile tx reads phases at tx and tx + 1
    let span = 4 * phaseLength  // one phase-split row: x = -p ..< 4*tilesX - p + 4
    let paddedRows = 4 * tileRows.count + 2
    let firstRow = 4 * tileRows.lowerBound - p
    let padded = scratch, vertical = scratch + paddedRows * span  // (paddedRows + 6) * span floats
    // The lanes of the last tiles read up to 3 values past the last vertical row: keep them finite.
    (vertical + 6 * span).update(repeating: 0, count: 4)
    let stride = channels * ldv  // from V[ξ] to V[ξ + 1]
    for ch in 0..<channels {
        let plane = input + ch * height * width
        // padded[r][q * phaseLength + k] = in[firstRow + r, 4k + q - p] (0 outside the image)
        for r in 0..<paddedRows {
            let y = firstRow + r
            let row = padded + r * span
            if y < 0 || y >= height {
                row.update(repeating: 0, count: span)
                continue
            }
            splitIntoPhases(plane + y * width, width: width, padding: p, into: row, phaseLength: phaseLength)
        }
        for ty in tileRows {
            let top = UnsafePointer(padded + 4 * (ty - tileRows.lowerBound) * span)
            inputTransform1D(
                sixRows(top, stride: span),
                (
                    vertical, vertical + span, vertical + 2 * span, vertical + 3 * span, vertical + 4 * span,
                    vertical + 5 * span
                ),
                count: span)
            let t0 = (ty - tileRows.lowerBound) * tilesX
            for l in 0..<6 {
                // d_j of tile tx is x = 4tx + j: phases 0...3 at tx, then phases 0 and 1 at tx + 1.
                let ph = UnsafePointer(vertical + l * span)
                let out = v + (l * 6 * channels + ch) * ldv + t0
                guard lanes else {
                    let d: SixRows = (
                        ph, ph + phaseLength, ph + 2 * phaseLength, ph + 3 * phaseLength, ph + 1, ph + phaseLength + 1
                    )
                    inputTransform1D(
                        d, (out, out + stride, out + 2 * stride, out + 3 * stride, out + 4 * stride, out + 5 * stride),
                        count: tilesX)
                    continue
                }
                for tx in Swift.stride(from: 0, to: tilesX, by: 4) {
                    let (d, o, count) = (ph + tx, out + tx, min(4, tilesX - tx))
                    let h = inputTransformLanes(
                        load4(d), load4(d + phaseLength), load4(d + 2 * phaseLength), load4(d + 3 * phaseLength),
                        load4(d + 1), load4(d + phaseLength + 1))
                    store4(h.0, o, count: count)
                    store4(h.1, o + stride, count: count)
                    store4(h.2, o + 2 * stride, count: count)
                    store4(h.3, o + 3 * stride, count: count)
                    store4(h.4, o + 4 * stride, count: count)
                    store4(h.5, o + 5 * stride, count: count)
                }
            }
        }
    }
}

/// The 1-D output transform applied elementwise to six vectors: `out.i` receives (A^T m)_i with
///     A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
@inline(__always)
private func outputTransform1D(_ m: SixRows, _ out: FourOutputRows, count: Int) {
    let (m0, m1, m2, m3, m4, m5) = m
    let (o0, o1, o2, o3) = out
    for k in 0..<count { o0[k] = m0[k] + (m1[k] + m2[k]) + (m3[k] + m4[k]) }
    for k in 0..<count { o1[k] = (m1[k] - m2[k]) + 2 * (m3[k] - m4[k]) }
    for k in 0..<count { o2[k] = (m1[k] + m2[k]) + 4 * (m3[k] + m4[k]) }
    for k in 0..<count { o3[k] = (m1[k] - m2[k]) + 8 * (m3[k] - m4[k]) + m5[k] }
}

/// The 1-D output transform on six lane vectors (`outputTransform1D`'s arithmetic, in its order).
@inline(__always)
private func outputTransformLanes(
    _ m0: SIMD4<Float>, _ m1: SIMD4<Float>, _ m2: SIMD4<Float>, _ m3: SIMD4<Float>, _ m4: SIMD4<Float>,
    _ m5: SIMD4<Float>
) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
    let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
    return (m0 + s12 + s34, d12 + 2 * d34, s12 + 4 * s34, d12 + 8 * d34 + m5)
}

/// out[o, 4ty + i, 4tx + j] (= or +=) (A^T M A)[i, j] + bias[o], for the tiles of `tileRows`
/// (rows and columns beyond Ho x Wo are dropped). On `lanes`: four tiles at a time, their 4x4
/// outputs in registers; otherwise whole passes over the block's tiles.
@inline(never)
private func winogradTransformOutput(
    _ m: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
    tileRows: Range<Int>, tilesX: Int, ldm: Int, scratch: UnsafeMutablePointer<Float>, geometry g: ConvolutionGeometry,
    accumulate: Bool, lanes: Bool
) {
    if lanes {
        winogradTransformOutputOnLanes(
            m, into: output, bias: bias, tileRows: tileRows, tilesX: tilesX, ldm: ldm, geometry: g,
            accumulate: accumulate)
        return
    }
    let (outHeight, outWidth, channels) = (g.outputHeight, g.outputWidth, g.outputChannels)
    let tiles = tileRows.count * tilesX
    let vertical = scratch  // row (6i + b): (A^T M)[i, b] for every tile of the block
    let tile = scratch + 24 * tiles  // row (4i + j): Y[i, j] for every tile of the block (40 * tiles floats)
    for oc in 0..<channels {
        for b in 0..<6 {
            let column = m + (b * channels + oc) * ldm  // M[6a + b] for a = 0..<6
            let out = vertical + b * tiles, step = 6 * tiles
            outputTransform1D(
                sixRows(column, stride: 6 * channels * ldm), (out, out + step, out + 2 * step, out + 3 * step),
                count: tiles)
        }
        for i in 0..<4 {
            let out = tile + 4 * i * tiles
            outputTransform1D(
                sixRows(vertical + 6 * i * tiles, stride: tiles), (out, out + tiles, out + 2 * tiles, out + 3 * tiles),
                count: tiles)
        }
        let plane = output + oc * outHeight * outWidth
        let offset = bias?[oc] ?? 0
        for ty in tileRows {
            for i in 0..<4 where 4 * ty + i < outHeight {
                let row = plane + (4 * ty + i) * outWidth
                // column j of the tile row is at values + j * tiles
                let values = UnsafePointer(tile + 4 * i * tiles + (ty - tileRows.lowerBound) * tilesX)
                let whole = min(tilesX, outWidth / 4)  // tiles whose four columns all exist
                mergePhases(values, stride: tiles, tiles: whole, offset: offset, into: row, accumulate: accumulate)
                for j in 0..<4 {
                    let count = min(tilesX, (outWidth - j + 3) / 4)  // tiles whose column 4tx + j exists
                    let phase = values + j * tiles
                    if accumulate {
                        for tx in whole..<count { row[4 * tx + j] += phase[tx] + offset }
                    } else {
                        for tx in whole..<count { row[4 * tx + j] = phase[tx] + offset }
                    }
                }
            }
        }
    }
}

/// `winogradTransformOutput` four tiles at a time: the 36 values M[ξ] of four neighbouring tiles
/// are SIMD4 lanes, A^T M A is computed in registers and written out with 4x4 transposes. Tiles
/// whose four columns all exist, in whole groups of four, take the vector write (the same
/// arithmetic as `mergePhases`); the others the scalar one of `winogradTransformOutput`.
@inline(never)
private func winogradTransformOutputOnLanes(
    _ m: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
    tileRows: Range<Int>, tilesX: Int, ldm: Int, geometry g: ConvolutionGeometry, accumulate: Bool
) {
    let (outHeight, outWidth, channels) = (g.outputHeight, g.outputWidth, g.outputChannels)
    let vectorTiles = min(tilesX, outWidth / 4) & ~3  // as mergePhases: whole tiles, whole groups of 4
    let step = channels * ldm  // from M[ξ] to M[ξ + 1]
    for oc in 0..<channels {
        let plane = output + oc * outHeight * outWidth
        let offset = bias?[oc] ?? 0
        let offsets = SIMD4<Float>(repeating: offset)
        for ty in tileRows {
            let source = m + oc * ldm + (ty - tileRows.lowerBound) * tilesX
            let rows = min(4, outHeight - 4 * ty)
            for tx in Swift.stride(from: 0, to: tilesX, by: 4) {
                @inline(__always) func column(_ b: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
                    let c = source + tx + b * step  // M[6a + b] for a = 0..<6
                    return outputTransformLanes(
                        load4(c), load4(c + 6 * step), load4(c + 12 * step), load4(c + 18 * step),
                        load4(c + 24 * step), load4(c + 30 * step))
                }
                let (c0, c1, c2, c3, c4, c5) = (column(0), column(1), column(2), column(3), column(4), column(5))
                @inline(__always) func write(_ i: Int, _ y: (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)) {
                    guard i < rows else { return }
                    let row = plane + (4 * ty + i) * outWidth
                    if tx + 4 <= vectorTiles {
                        storeTransposed(y.0, y.1, y.2, y.3, plus: offsets, into: row + 4 * tx, accumulate: accumulate)
                        return
                    }
                    for lane in 0..<min(4, tilesX - tx) {
                        for j in 0..<4 where 4 * (tx + lane) + j < outWidth {
                            let value = (j == 0 ? y.0 : j == 1 ? y.1 : j == 2 ? y.2 : y.3)[lane]
                            if accumulate {
                                row[4 * (tx + lane) + j] += value + offset
                            } else {
                                row[4 * (tx + lane) + j] = value + offset
                            }
                        }
                    }
                }
                write(0, outputTransformLanes(c0.0, c1.0, c2.0, c3.0, c4.0, c5.0))
                write(1, outputTransformLanes(c0.1, c1.1, c2.1, c3.1, c4.1, c5.1))
                write(2, outputTransformLanes(c0.2, c1.2, c2.2, c3.2, c4.2, c5.2))
                write(3, outputTransformLanes(c0.3, c1.3, c2.3, c3.3, c4.3, c5.3))
            }
        }
    }
}
