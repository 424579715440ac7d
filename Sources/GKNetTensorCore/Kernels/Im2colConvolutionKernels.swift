// The im2col + GEMM convolution (see ConvolutionGeometry for the math and legend). For image n and
// group g the input patches are unfolded (a chunk of output rows at a time) into a (Cg*K*K) x (Ho*Wo) matrix `col`, and
//     out[n, g] (Og x HoWo) = w[g] (Og x CgKK) . col            (forward)
//     dW[g] += dOut[n, g] . col^T,   dCol = w[g]^T . dOut[n, g]  (backward; dCol folds back into dIn)
// A pointwise (1x1, stride 1, no padding) conv skips the unfold: the input planes are `col`.

/// The output rows of one im2col chunk: whole rows, about `targetColumns` output pixels, so that
/// the unfolded matrix stays a few MB (cache-friendly, and never a fresh mmap per call).
private func rowChunks(_ g: ConvolutionGeometry, targetColumns: Int = 4096) -> [Range<Int>] {
    let rowsPerChunk = max(1, targetColumns / max(1, g.outputWidth))
    return stride(from: 0, to: g.outputHeight, by: rowsPerChunk).map { $0..<min(g.outputHeight, $0 + rowsPerChunk) }
}

/// Forward im2col convolution: `output (= or +=) conv(input, weight) + bias`.
func im2colConvolutionForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, geometry g: ConvolutionGeometry, accumulate: Bool
) {
    let rows = g.inputChannelsPerGroup * g.kernelSize * g.kernelSize
    let columns = g.outputHeight * g.outputWidth
    let inputPlanes = g.inputHeight * g.inputWidth
    let og = g.outputChannelsPerGroup
    let chunks = g.isPointwise ? [0..<g.outputHeight] : rowChunks(g)
    let col = UnsafeMutablePointer<Float>.allocate(capacity: g.isPointwise ? 0 : rows * chunks[0].count * g.outputWidth)
    defer { col.deallocate() }
    for n in 0..<g.batch {
        for group in 0..<g.groups {
            let x = input + (n * g.inputChannels + group * g.inputChannelsPerGroup) * inputPlanes
            let out = output + (n * g.outputChannels + group * og) * columns
            for chunk in chunks {
                let width = chunk.count * g.outputWidth
                if !g.isPointwise {
                    unfold(x, into: col, channels: g.inputChannelsPerGroup, outputRows: chunk, geometry: g)
                }
                BLAS.sgemm(
                    m: og, n: width, k: rows, a: weight + group * og * rows, lda: rows,
                    b: g.isPointwise ? x : UnsafePointer(col), ldb: width, beta: accumulate ? 1 : 0,
                    c: out + chunk.lowerBound * g.outputWidth, ldc: columns)
            }
        }
    }
    if let bias {
        addChannelBias(output, bias: bias, batch: g.batch, channels: g.outputChannels, planeSize: columns)
    }
}

/// Backward im2col convolution; `+=` into each non-nil gradient (`=` when `accumulate` is false).
func im2colConvolutionBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
    geometry g: ConvolutionGeometry, accumulate: Bool
) {
    if !accumulate {
        dInput?.update(repeating: 0, count: g.inputCount)
        dWeight?.update(repeating: 0, count: g.weightCount)
        dBias?.update(repeating: 0, count: g.outputChannels)
    }
    let rows = g.inputChannelsPerGroup * g.kernelSize * g.kernelSize
    let columns = g.outputHeight * g.outputWidth
    let inputPlanes = g.inputHeight * g.inputWidth
    let og = g.outputChannelsPerGroup
    let chunks = g.isPointwise ? [0..<g.outputHeight] : rowChunks(g)
    let col = UnsafeMutablePointer<Float>.allocate(capacity: g.isPointwise ? 0 : rows * chunks[0].count * g.outputWidth)
    defer { col.deallocate() }
    for n in 0..<g.batch {
        for group in 0..<g.groups {
            let channelOffset = (n * g.inputChannels + group * g.inputChannelsPerGroup) * inputPlanes
            for chunk in chunks {
                let width = chunk.count * g.outputWidth
                let dOut = dOutput + (n * g.outputChannels + group * og) * columns + chunk.lowerBound * g.outputWidth
                if let dWeight, let input {
                    // in the forward pass: out[n,g] = w[g] . col, so dW[g] += dOut[n,g] . col^T
                    let x = input + channelOffset
                    if !g.isPointwise {
                        unfold(x, into: col, channels: g.inputChannelsPerGroup, outputRows: chunk, geometry: g)
                    }
                    BLAS.sgemm(
                        transposeB: true, m: og, n: rows, k: width, a: dOut, lda: columns,
                        b: g.isPointwise ? x : UnsafePointer(col), ldb: width, beta: 1,
                        c: dWeight + group * og * rows, ldc: rows)
                }
                if let dInput, let weight {
                    // in the forward pass: out[n,g] = w[g] . col, so dCol = w[g]^T . dOut[n,g], folded into dIn
                    let dx = dInput + channelOffset
                    if g.isPointwise {
                        BLAS.sgemm(
                            transposeA: true, m: rows, n: width, k: og, a: weight + group * og * rows, lda: rows,
                            b: dOut, ldb: columns, beta: 1, c: dx, ldc: columns)
                    } else {
                        BLAS.sgemm(
                            transposeA: true, m: rows, n: width, k: og, a: weight + group * og * rows, lda: rows,
                            b: dOut, ldb: columns, beta: 0, c: col, ldc: width)
                        fold(col, into: dx, channels: g.inputChannelsPerGroup, outputRows: chunk, geometry: g)
                    }
                }
            }
        }
    }
    if let dBias {
        accumulateChannelSums(dBias, of: dOutput, batch: g.batch, channels: g.outputChannels, planeSize: columns)
    }
}

/// The output columns `lo..<hi` whose input column `x*s + offset` lies inside `0..<width`.
@inline(__always)
private func validRange(offset: Int, stride: Int, inputSize: Int, outputSize: Int) -> Range<Int> {
    let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    let hi = inputSize - 1 - offset >= 0 ? min(outputSize, (inputSize - 1 - offset) / stride + 1) : 0
    return min(lo, hi)..<max(lo, hi)
}

/// im2col for the output rows `y0..<y1`:
/// `col[(c*K + i)*K + j, (y - y0)*Wo + x] = in[c, y*s - p + i*d, x*s - p + j*d]` (0 outside).
/// in: channels x H x W; col: (channels*K*K) x ((y1 - y0)*Wo).
func unfold(
    _ input: UnsafePointer<Float>, into col: UnsafeMutablePointer<Float>, channels: Int, outputRows: Range<Int>,
    geometry g: ConvolutionGeometry
) {
    let k = g.kernelSize, kk = k * k
    let (height, width, outWidth) = (g.inputHeight, g.inputWidth, g.outputWidth)
    let (s, p, d) = (g.stride, g.padding, g.dilation)
    let columns = outputRows.count * outWidth
    parallelChunks(channels * kk, minimumPerThread: max(1, 32768 / max(1, columns))) { rows in
        for row in rows {
            let c = row / kk, i = (row % kk) / k, j = row % k
            let plane = input + c * height * width
            let offsetX = j * d - p
            let valid = validRange(offset: offsetX, stride: s, inputSize: width, outputSize: outWidth)
            for y in outputRows {
                let destination = col + row * columns + (y - outputRows.lowerBound) * outWidth
                let iy = y * s - p + i * d
                if iy < 0 || iy >= height {
                    destination.update(repeating: 0, count: outWidth)
                    continue
                }
                let source = plane + iy * width + offsetX
                for x in 0..<valid.lowerBound { destination[x] = 0 }
                if s == 1 {
                    for x in valid { destination[x] = source[x] }
                } else {
                    for x in valid { destination[x] = source[x * s] }
                }
                for x in valid.upperBound..<outWidth { destination[x] = 0 }
            }
        }
    }
}

/// col2im, the adjoint of `unfold` for the output rows `y0..<y1`:
/// `in[c, y*s - p + i*d, x*s - p + j*d] += col[(c*K + i)*K + j, (y - y0)*Wo + x]`.
/// Parallel over channels, so each thread writes its own planes.
func fold(
    _ col: UnsafePointer<Float>, into dInput: UnsafeMutablePointer<Float>, channels: Int, outputRows: Range<Int>,
    geometry g: ConvolutionGeometry
) {
    let k = g.kernelSize, kk = k * k
    let (height, width, outWidth) = (g.inputHeight, g.inputWidth, g.outputWidth)
    let (s, p, d) = (g.stride, g.padding, g.dilation)
    let columns = outputRows.count * outWidth
    parallelChunks(channels, minimumPerThread: max(1, 32768 / max(1, columns * kk))) { range in
        for c in range {
            let plane = dInput + c * height * width
            for i in 0..<k {
                for j in 0..<k {
                    let row = (c * k + i) * k + j
                    let offsetX = j * d - p
                    let valid = validRange(offset: offsetX, stride: s, inputSize: width, outputSize: outWidth)
                    for y in outputRows {
                        let iy = y * s - p + i * d
                        if iy < 0 || iy >= height { continue }
                        let source = col + row * columns + (y - outputRows.lowerBound) * outWidth
                        let destination = plane + iy * width + offsetX
                        if s == 1 {
                            for x in valid { destination[x] += source[x] }
                        } else {
                            for x in valid { destination[x * s] += source[x] }
                        }
                    }
                }
            }
        }
    }
}
