// Reduction kernels (sum/mean, max) over any set of axes, as forward/backward pairs.
// The input is walked as out[k] = reduce_r x[kept[k] + reduced[r] + j] with a contiguous innermost
// run j (reduced or kept), so every inner loop is over consecutive elements.

/// How a reduction over some axes walks a contiguous row-major input.
///
/// Adjacent axes of the same kind (kept / reduced) are merged and size-1 axes dropped; the last
/// merged axis is the contiguous `inner` run. When it is reduced, output k is
/// `reduce_{r, j} x[keptOffsets[k] + reducedOffsets[r] + j]`; when it is kept, output `k * inner + j`
/// is `reduce_r x[keptOffsets[k] + reducedOffsets[r] + j]`.
struct ReductionGeometry {
    var keptOffsets: [Int]
    var reducedOffsets: [Int]
    var inner: Int
    var innerIsReduced: Bool

    /// Elements in the output.
    var outputCount: Int { innerIsReduced ? keptOffsets.count : keptOffsets.count * inner }
    /// Input elements folded into each output element.
    var reductionSize: Int { innerIsReduced ? reducedOffsets.count * inner : reducedOffsets.count }

    /// - Parameter axes: normalised (non-negative) axes of `shape` to reduce.
    init(shape: [Int], axes: Set<Int>) {
        var merged: [(size: Int, reduced: Bool)] = []
        for axis in shape.indices where shape[axis] != 1 {
            let reduced = axes.contains(axis)
            if let last = merged.last, last.reduced == reduced {
                merged[merged.count - 1].size *= shape[axis]
            } else {
                merged.append((shape[axis], reduced))
            }
        }
        guard let last = merged.popLast() else {
            (keptOffsets, reducedOffsets, inner, innerIsReduced) = ([0], [0], 1, false)
            return
        }
        inner = last.size
        innerIsReduced = last.reduced
        var stride = inner
        var keptAxes: [(size: Int, stride: Int)] = []
        var reducedAxes: [(size: Int, stride: Int)] = []
        for axis in merged.reversed() {
            if axis.reduced {
                reducedAxes.insert((axis.size, stride), at: 0)
            } else {
                keptAxes.insert((axis.size, stride), at: 0)
            }
            stride *= axis.size
        }
        keptOffsets = rowMajorOffsets(keptAxes)
        reducedOffsets = rowMajorOffsets(reducedAxes)
    }
}

/// The offsets Σ index[a] * stride[a] of every multi-index, in row-major order ([0] for no axes).
func rowMajorOffsets(_ axes: [(size: Int, stride: Int)]) -> [Int] {
    var offsets = [0]
    for axis in axes {
        var next: [Int] = []
        next.reserveCapacity(offsets.count * axis.size)
        for base in offsets {
            for i in 0..<axis.size { next.append(base + i * axis.stride) }
        }
        offsets = next
    }
    return offsets
}

/// Σ p[0..<n] in Double.
@inline(__always)
func sumInDouble(_ p: UnsafePointer<Float>, count n: Int) -> Double {
    // Eight Double lanes (the compiler does not vectorize a sum it would have to reorder).
    var lanes0 = SIMD4<Double>(), lanes1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        lanes0 += SIMD4<Double>(load4(p + i))
        lanes1 += SIMD4<Double>(load4(p + i + 4))
        i += 8
    }
    var total = (lanes0 + lanes1).sum()
    while i < n {
        total += Double(p[i])
        i += 1
    }
    return total
}

/// Input elements per thread below which a reduction stays on one thread.
let reductionGrain = 1 << 15
/// Width of the tiles a kept inner run is cut into, so that even one output row spreads over threads.
private let reductionTile = 1024

extension ReductionGeometry {
    /// Work items: kept position k times tiles of the inner run (one tile when it is reduced).
    var innerTiles: Int { innerIsReduced ? 1 : (inner + reductionTile - 1) / reductionTile }
    var itemCount: Int { keptOffsets.count * innerTiles }
    /// Items per thread below which the work stays on one thread.
    var itemGrain: Int {
        let work = innerIsReduced ? reductionSize : reductionSize * Swift.min(inner, reductionTile)
        return Swift.max(1, reductionGrain / Swift.max(1, work))
    }

    /// The kept position and the inner tile (start, width) of work item `i` (a kept inner run only).
    @inline(__always)
    func tile(_ i: Int) -> (k: Int, start: Int, width: Int) {
        let (k, t) = i.quotientAndRemainder(dividingBy: innerTiles)
        let start = t * reductionTile
        return (k, start, Swift.min(reductionTile, inner - start))
    }
}

// MARK: - sum / mean

/// out = scale * Σ_reduced x (scale 1 for sum, 1/count for mean), accumulated in Double.
func sumForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, geometry g: ReductionGeometry,
    scale: Double
) {
    guard let x = input.baseAddress else {
        for k in 0..<output.count { output[k] = 0 }
        return
    }
    parallelChunks(g.itemCount, minimumPerThread: g.itemGrain) { items in
        if g.innerIsReduced {
            for k in items {
                var total = 0.0
                for r in g.reducedOffsets { total += sumInDouble(x + g.keptOffsets[k] + r, count: g.inner) }
                output[k] = Float(total * scale)
            }
            return
        }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: reductionTile) { row in
            for item in items {
                let (k, start, width) = g.tile(item)
                for j in 0..<width { row[j] = 0 }
                for r in g.reducedOffsets {
                    let source = x + g.keptOffsets[k] + r + start
                    for j in 0..<width { row[j] += Double(source[j]) }
                }
                let target = k * g.inner + start
                for j in 0..<width { output[target + j] = Float(row[j] * scale) }
            }
        }
    }
}

func sumBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, geometry g: ReductionGeometry,
    scale: Float
) {
    guard let dx = dInput.baseAddress else { return }
    parallelChunks(g.itemCount, minimumPerThread: g.itemGrain) { items in
        // forward: out[k] = scale * Σ_r x[k, r], so d x[k, r] = scale * d out[k] (a broadcast)
        for item in items {
            if g.innerIsReduced {
                let value = dOutput[item] * scale
                for r in g.reducedOffsets {
                    let target = dx + g.keptOffsets[item] + r
                    for j in 0..<g.inner { target[j] += value }
                }
            } else {
                let (k, start, width) = g.tile(item)
                let source = k * g.inner + start
                for r in g.reducedOffsets {
                    let target = dx + g.keptOffsets[k] + r + start
                    for j in 0..<width { target[j] += scale * dOutput[source + j] }
                }
            }
        }
    }
}

// MARK: - max

/// out = max_reduced x; `argmax` gets the flat input index of the first maximum in row-major
/// order (NOTE: NaN is not propagated; the first maximum wins ties, so its gradient is unique).
/// - Precondition: `g.reductionSize > 0`.
func maxForward(
    output: UnsafeMutableBufferPointer<Float>, argmax: UnsafeMutableBufferPointer<Int>,
    input: UnsafeBufferPointer<Float>, geometry g: ReductionGeometry
) {
    parallelChunks(g.itemCount, minimumPerThread: g.itemGrain) { items in
        for item in items {
            if g.innerIsReduced {
                var bestIndex = g.keptOffsets[item] + g.reducedOffsets[0]
                var best = input[bestIndex]
                for r in g.reducedOffsets {
                    let base = g.keptOffsets[item] + r
                    for j in 0..<g.inner where input[base + j] > best {
                        best = input[base + j]
                        bestIndex = base + j
                    }
                }
                output[item] = best
                argmax[item] = bestIndex
            } else {
                let (k, start, width) = g.tile(item)
                let target = k * g.inner + start
                let first = g.keptOffsets[k] + g.reducedOffsets[0] + start
                for j in 0..<width {
                    output[target + j] = input[first + j]
                    argmax[target + j] = first + j
                }
                for r in g.reducedOffsets.dropFirst() {
                    let base = g.keptOffsets[k] + r + start
                    for j in 0..<width where input[base + j] > output[target + j] {
                        output[target + j] = input[base + j]
                        argmax[target + j] = base + j
                    }
                }
            }
        }
    }
}

func maxBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, argmax: UnsafeBufferPointer<Int>
) {
    // forward: out[k] = x[argmax[k]], so d x[argmax[k]] = d out[k] and 0 elsewhere.
    // Each input element is the maximum of at most one output, so chunks never collide.
    parallelChunks(dOutput.count, minimumPerThread: cheapElementwiseGrain) { range in
        for k in range { dInput[argmax[k]] += dOutput[k] }
    }
}
