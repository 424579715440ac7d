// The row (de)interleaving of the Winograd F(4x4, 3x3) transforms: a row split into its four
// phases (x mod 4) and back. A phase alone is a stride-4 access that does not vectorize; all four
// at once are 4x4 transposes of consecutive 4-float groups, done here with SIMD4 shuffles. Also the
// SIMD4 loads and stores of the transforms' lane paths (four tiles side by side).

/// The 4x4 transpose: result r is (a[r], b[r], c[r], d[r]).
@inline(__always)
func transposed4x4(_ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>)
    -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>)
{
    (
        SIMD4(a[0], b[0], c[0], d[0]), SIMD4(a[1], b[1], c[1], d[1]), SIMD4(a[2], b[2], c[2], d[2]),
        SIMD4(a[3], b[3], c[3], d[3])
    )
}

@inline(__always)
func load4(_ pointer: UnsafePointer<Float>) -> SIMD4<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD4<Float>.self)
}

@inline(__always)
func load8(_ pointer: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
func store4(_ value: SIMD4<Float>, _ pointer: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(pointer).storeBytes(of: value, as: SIMD4<Float>.self)
}

/// Stores the first `count` (at most 4) lanes of `value`.
@inline(__always)
func store4(_ value: SIMD4<Float>, _ pointer: UnsafeMutablePointer<Float>, count: Int) {
    if count == 4 {
        store4(value, pointer)
    } else {
        for lane in 0..<count { pointer[lane] = value[lane] }
    }
}

/// Splits one zero-padded input row into phases: `row[q * phaseLength + k] = source[4k + q - p]`
/// for 0 <= 4k + q - p < width, 0 elsewhere (q < 4, k < phaseLength).
@inline(__always)
func splitIntoPhases(
    _ source: UnsafePointer<Float>, width: Int, padding p: Int, into row: UnsafeMutablePointer<Float>, phaseLength: Int
) {
    // k with 0 <= 4k + q - p < width, per phase (both bounds fall with q); all four phases are
    // inside for k in kLo..<kHi.
    @inline(__always) func first(_ q: Int) -> Int { min(phaseLength, max(0, (p - q + 3) / 4)) }
    @inline(__always) func last(_ q: Int) -> Int { min(phaseLength, max(first(q), (width - 1 + p - q) / 4 + 1)) }
    let kLo = max(max(first(0), first(1)), max(first(2), first(3)))
    let kHi = max(kLo, min(min(last(0), last(1)), min(last(2), last(3))))
    let base = source - p
    var k = kLo
    while k + 4 <= kHi {
        let (t0, t1, t2, t3) = transposed4x4(
            load4(base + 4 * k), load4(base + 4 * k + 4), load4(base + 4 * k + 8), load4(base + 4 * k + 12))
        store4(t0, row + k)
        store4(t1, row + phaseLength + k)
        store4(t2, row + 2 * phaseLength + k)
        store4(t3, row + 3 * phaseLength + k)
        k += 4
    }
    let vectorEnd = k
    for q in 0..<4 {
        let phase = row + q * phaseLength, shifted = base + q
        let (lo, hi) = (first(q), last(q))
        for k in 0..<lo { phase[k] = 0 }
        for k in lo..<min(hi, max(lo, kLo)) { phase[k] = shifted[4 * k] }
        for k in max(lo, vectorEnd)..<max(hi, max(lo, vectorEnd)) { phase[k] = shifted[4 * k] }
        for k in hi..<phaseLength { phase[k] = 0 }
    }
}

/// Four tiles' columns (phase j of tiles 0..<4 in `p_j`) back into 16 consecutive values of a row:
/// `out[4k + j] (= or +=) p_j[k] + bias`.
@inline(__always)
func storeTransposed(
    _ p0: SIMD4<Float>, _ p1: SIMD4<Float>, _ p2: SIMD4<Float>, _ p3: SIMD4<Float>, plus bias: SIMD4<Float>,
    into out: UnsafeMutablePointer<Float>, accumulate: Bool
) {
    let (t0, t1, t2, t3) = transposed4x4(p0, p1, p2, p3)
    if accumulate {
        store4(load4(out) + t0 + bias, out)
        store4(load4(out + 4) + t1 + bias, out + 4)
        store4(load4(out + 8) + t2 + bias, out + 8)
        store4(load4(out + 12) + t3 + bias, out + 12)
    } else {
        store4(t0 + bias, out)
        store4(t1 + bias, out + 4)
        store4(t2 + bias, out + 8)
        store4(t3 + bias, out + 12)
    }
}

/// The inverse for one output row, over whole 4-column tiles: `row[4tx + j] (= or +=) phase_j[tx] + offset`
/// for tx < `tiles` (phase_j = `phases + j * stride`).
@inline(__always)
func mergePhases(
    _ phases: UnsafePointer<Float>, stride: Int, tiles: Int, offset: Float, into row: UnsafeMutablePointer<Float>,
    accumulate: Bool
) {
    let bias = SIMD4<Float>(repeating: offset)
    var tx = 0
    while tx + 4 <= tiles {
        storeTransposed(
            load4(phases + tx), load4(phases + stride + tx), load4(phases + 2 * stride + tx),
            load4(phases + 3 * stride + tx), plus: bias, into: row + 4 * tx, accumulate: accumulate)
        tx += 4
    }
    for j in 0..<4 {
        let phase = phases + j * stride
        if accumulate {
            for t in tx..<tiles { row[4 * t + j] += phase[t] + offset }
        } else {
            for t in tx..<tiles { row[4 * t + j] = phase[t] + offset }
        }
    }
}
