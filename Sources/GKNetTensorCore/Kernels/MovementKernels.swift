// Data-movement kernels (permute, slice/concat along an axis, pad), as forward/backward pairs.
// Every op copies (there are no strided views); each walks the output row by row with a
// precomputed input offset per row and a contiguous (or constant-stride) inner run.

// MARK: - permute

/// out[i0, ..., in] = x[i_{p^-1}...]: the output walked as rows of `inner` elements, each read
/// from the input at `rowOffsets[row] + j * innerStride`.
///
/// Output axes that stay adjacent in the input are merged first, so NCHW -> NHWC becomes a
/// [N, HW, C] <- [N, C, HW] transpose and the identity permutation a single contiguous run.
struct PermuteGeometry {
    var rowShape: [Int]
    var rowStrides: [Int]
    var inner: Int
    var innerStride: Int

    var rowCount: Int { rowShape.elementCount }

    /// - Parameters: shape: the input shape; axes: output axis i is input axis axes[i].
    init(shape: [Int], axes: [Int]) {
        let strides = shape.rowMajorStrides
        var merged: [(size: Int, stride: Int)] = []
        for axis in axes where shape[axis] != 1 {
            if let last = merged.last, last.stride == shape[axis] * strides[axis] {
                merged[merged.count - 1] = (last.size * shape[axis], strides[axis])
            } else {
                merged.append((shape[axis], strides[axis]))
            }
        }
        let last = merged.popLast() ?? (1, 1)
        inner = last.size
        innerStride = last.stride
        rowShape = merged.map(\.size)
        rowStrides = merged.map(\.stride)
    }

    /// Calls `body(row, inputOffset)` for each row in `rows`, tracking the offset incrementally.
    @inline(__always)
    func forEachRow(in rows: Range<Int>, _ body: (Int, Int) -> Void) {
        guard !rows.isEmpty else { return }
        let rank = rowShape.count
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        var remainder = rows.lowerBound
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            index[axis] = remainder % rowShape[axis]
            remainder /= rowShape[axis]
            offset += index[axis] * rowStrides[axis]
        }
        for row in rows {
            body(row, offset)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                offset += rowStrides[axis]
                if index[axis] < rowShape[axis] { break }
                offset -= rowStrides[axis] * rowShape[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Calls `body(outputStart, inputStart, count)` for runs covering `rows`: output elements
    /// outputStart ..< outputStart + count read input inputStart + j * innerStride.
    ///
    /// A contiguous inner axis gives one run per row. A strided one (a transpose) is tiled: rows go
    /// in bands of `permuteTile` and each band's inner axis in blocks of `permuteTile`, so the input
    /// cache lines one block touches serve every row of the band.
    @inline(__always)
    func forEachRun(in rows: Range<Int>, _ body: (Int, Int, Int) -> Void) {
        if innerStride == 1 {
            forEachRow(in: rows) { row, offset in body(row * inner, offset, inner) }
            return
        }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: permuteTile) { offsets in
            for bandStart in stride(from: rows.lowerBound, to: rows.upperBound, by: permuteTile) {
                let band = bandStart..<Swift.min(bandStart + permuteTile, rows.upperBound)
                forEachRow(in: band) { row, offset in offsets[row - bandStart] = offset }
                for blockStart in stride(from: 0, to: inner, by: permuteTile) {
                    let count = Swift.min(permuteTile, inner - blockStart)
                    for row in band {
                        body(row * inner + blockStart, offsets[row - bandStart] + blockStart * innerStride, count)
                    }
                }
            }
        }
    }
}

/// Rows per band and elements per block of a tiled transpose.
private let permuteTile = 16

/// Elements per thread below which a copy stays on one thread.
let movementGrain = 1 << 16

func permuteForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, geometry g: PermuteGeometry
) {
    guard !output.isEmpty else { return }
    let stride = g.innerStride
    parallelChunks(g.rowCount, minimumPerThread: Swift.max(1, movementGrain / g.inner)) { rows in
        g.forEachRun(in: rows) { target, source, count in
            if stride == 1 {
                for j in 0..<count { output[target + j] = input[source + j] }
            } else {
                for j in 0..<count { output[target + j] = input[source + j * stride] }
            }
        }
    }
}

func permuteBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, geometry g: PermuteGeometry
) {
    guard !dOutput.isEmpty else { return }
    let stride = g.innerStride
    parallelChunks(g.rowCount, minimumPerThread: Swift.max(1, movementGrain / g.inner)) { rows in
        // forward: out[row, j] = x[offset(row) + j * stride], a bijection, so d x there += d out[row, j]
        g.forEachRun(in: rows) { source, target, count in
            for j in 0..<count { dInput[target + j * stride] += dOutput[source + j] }
        }
    }
}

// MARK: - slice / concatenate

/// A block of `length` indices starting at `start` along one axis of a wide tensor
/// [outer, wideSize, inner], matching a narrow tensor [outer, length, inner].
struct AxisBlock {
    var outer: Int
    var wideSize: Int
    var start: Int
    var length: Int
    var inner: Int

    init(shape: [Int], axis: Int, start: Int, length: Int) {
        outer = shape[..<axis].reduce(1, *)
        wideSize = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
        self.start = start
        self.length = length
    }
}

/// narrow[o, i, j] = wide[o, start + i, j]: slicing forward, and concatenation backward
/// (accumulating, so each input of a concatenation gets its block of the output gradient).
func gatherAxisBlock(
    narrow: UnsafeMutableBufferPointer<Float>, wide: UnsafeBufferPointer<Float>, block b: AxisBlock, accumulate: Bool
) {
    let run = b.length * b.inner
    guard run > 0 else { return }
    parallelChunks(b.outer, minimumPerThread: Swift.max(1, movementGrain / run)) { range in
        for o in range {
            let source = (o * b.wideSize + b.start) * b.inner
            let target = o * run
            if accumulate {
                for j in 0..<run { narrow[target + j] += wide[source + j] }
            } else {
                for j in 0..<run { narrow[target + j] = wide[source + j] }
            }
        }
    }
}

/// wide[o, start + i, j] += narrow[o, i, j]: slicing backward, and concatenation forward (into a
/// zeroed output).
func scatterAddAxisBlock(
    wide: UnsafeMutableBufferPointer<Float>, narrow: UnsafeBufferPointer<Float>, block b: AxisBlock
) {
    let run = b.length * b.inner
    guard run > 0 else { return }
    parallelChunks(b.outer, minimumPerThread: Swift.max(1, movementGrain / run)) { range in
        // forward: narrow[o, i, j] = wide[o, start + i, j], so d wide[o, start + i, j] += d narrow[o, i, j]
        for o in range {
            let target = (o * b.wideSize + b.start) * b.inner
            let source = o * run
            for j in 0..<run { wide[target + j] += narrow[source + j] }
        }
    }
}

// MARK: - pad

/// Padding as independent planes (the leading unpadded axes) times a padded block whose rows
/// are read through per-axis index maps (output index -> input index, or -1 for a zero).
struct PaddingGeometry {
    var planes: Int
    var inputPlane: Int
    var outputPlane: Int
    /// Output sizes, input strides and index maps of the axes from the first padded one on.
    var rowShape: [Int]
    var rowInputStrides: [Int]
    var rowMaps: [[Int]]
    var lastMap: [Int]

    /// - Parameter reflect: mirror without repeating the edge (PyTorch `reflect`), else zeros.
    init(shape: [Int], padding: [(before: Int, after: Int)], reflect: Bool) {
        let first = padding.firstIndex { $0.before != 0 || $0.after != 0 } ?? shape.count
        let padded = shape.count > first ? first : Swift.max(0, shape.count - 1)
        planes = shape[..<padded].reduce(1, *)
        inputPlane = shape[padded...].reduce(1, *)
        var maps: [[Int]] = []
        for axis in padded..<shape.count {
            let (before, after, size) = (padding[axis].before, padding[axis].after, shape[axis])
            maps.append(
                (0..<(before + size + after)).map { o in
                    let i = o - before
                    if i >= 0 && i < size { return i }
                    if !reflect { return -1 }
                    return i < 0 ? -i : 2 * (size - 1) - i
                })
        }
        let strides = Array(shape[padded...]).rowMajorStrides
        lastMap = maps.popLast() ?? [0]
        rowMaps = maps
        rowShape = maps.map(\.count)
        rowInputStrides = Array(strides.dropLast())
        outputPlane = rowShape.elementCount * lastMap.count
    }

    /// Calls `body(outputRowStart, inputRowStart)` for every row of one plane; the input offset is
    /// nil when the row lies in zero padding.
    @inline(__always)
    func forEachRow(_ body: (Int, Int?) -> Void) {
        let rank = rowShape.count
        var index = [Int](repeating: 0, count: rank)
        for row in 0..<rowShape.elementCount {
            var offset: Int? = 0
            for axis in 0..<rank {
                let i = rowMaps[axis][index[axis]]
                if i < 0 {
                    offset = nil
                    break
                }
                offset! += i * rowInputStrides[axis]
            }
            body(row * lastMap.count, offset)
            var axis = rank - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < rowShape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }
}

func padForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, geometry g: PaddingGeometry
) {
    guard g.outputPlane > 0 else { return }
    g.lastMap.withUnsafeBufferPointer { map in
        parallelChunks(g.planes, minimumPerThread: Swift.max(1, movementGrain / g.outputPlane)) { planes in
            for plane in planes {
                let (inputBase, outputBase) = (plane * g.inputPlane, plane * g.outputPlane)
                g.forEachRow { outputRow, inputRow in
                    let target = outputBase + outputRow
                    guard let inputRow else {
                        for j in 0..<map.count { output[target + j] = 0 }
                        return
                    }
                    let source = inputBase + inputRow
                    for j in 0..<map.count { output[target + j] = map[j] < 0 ? 0 : input[source + map[j]] }
                }
            }
        }
    }
}

/// Planes run in parallel; rows within a plane run in order, since reflected rows share sources.
func padBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, geometry g: PaddingGeometry
) {
    guard g.outputPlane > 0 else { return }
    g.lastMap.withUnsafeBufferPointer { map in
        parallelChunks(g.planes, minimumPerThread: Swift.max(1, movementGrain / g.outputPlane)) { planes in
            // forward: out[o] = x[map(o)] or 0, so d x[map(o)] += d out[o] (reflection sums copies)
            for plane in planes {
                let (inputBase, outputBase) = (plane * g.inputPlane, plane * g.outputPlane)
                g.forEachRow { outputRow, inputRow in
                    guard let inputRow else { return }
                    let (source, target) = (outputBase + outputRow, inputBase + inputRow)
                    for j in 0..<map.count where map[j] >= 0 { dInput[target + map[j]] += dOutput[source + j] }
                }
            }
        }
    }
}
