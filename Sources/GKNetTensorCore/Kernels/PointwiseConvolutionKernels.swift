// Pointwise (1x1, stride 1, unpadded, ungrouped) convolution as GEMMs on NCHW, forward and
// backward. Each image's planes already are the matrix a 1x1 convolution multiplies:
//     out[n] (O x HW) = w (O x C) . in[n] (C x HW) + b
// so no layout change is needed, where oneDNN reorders source and destination to its blocked
// layout around every call and its 1x1 backward-weights primitive is slow on small maps
// (docs/benchmarks.md, "Training step profile").
//
// Legend (Shape.swift): N batch, C input channels, O output channels, HW = H·W positions.
// Threads: work items are (image, column range) pairs, spread over the threads; every GEMM runs on
// its thread (`withBLASOnCallingThread`), so one parallel region serves the whole op.
import Foundation

/// Whether the pointwise kernels handle a geometry: 1x1, stride 1, no padding, one group.
func pointwiseSupports(_ g: ConvolutionGeometry) -> Bool {
    g.isPointwise && g.groups == 1
}

/// The work items of a pointwise pass: each is one image and a range of its columns (positions).
/// Whole images when there are at least as many images as threads; otherwise each image's columns
/// are split (in multiples of 16) so that every thread gets work (batch-1 inference).
private struct PointwiseWork {
    let parts: Int
    let columnsPerPart: Int
    let positions: Int
    let count: Int

    init(_ g: ConvolutionGeometry, threads: Int) {
        positions = g.outputHeight * g.outputWidth
        let wanted = g.batch >= threads ? 1 : (threads + g.batch - 1) / g.batch
        columnsPerPart = max(16, ((positions + wanted - 1) / wanted + 15) / 16 * 16)
        parts = (positions + columnsPerPart - 1) / columnsPerPart
        count = g.batch * parts
    }

    /// The image and the column range of item `index`.
    func item(_ index: Int) -> (image: Int, columns: Range<Int>) {
        let part = index % parts
        let start = part * columnsPerPart
        return (index / parts, start..<min(positions, start + columnsPerPart))
    }
}

/// Forward pointwise convolution: `output (= or +=) conv1x1(input, weight) + bias`.
///
///     out[n, o, s] = b[o] + sum_c w[o, c] * in[n, c, s]
/// - Parameters: output N x O x HW; input N x C x HW; weight O x C; bias O or nil.
func pointwiseConvolutionForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, geometry g: ConvolutionGeometry, accumulate: Bool
) {
    let (c, o) = (g.inputChannels, g.outputChannels)
    let work = PointwiseWork(g, threads: Threading.count)
    let positions = work.positions
    parallelChunks(work.count, minimumPerThread: 1) { items in
        withBLASOnCallingThread {
            for index in items {
                let (n, columns) = work.item(index)
                let out = output + n * o * positions + columns.lowerBound
                if let bias, !accumulate {
                    // The bias first, then the product added to it (beta = 1): one pass over the output.
                    for oc in 0..<o { (out + oc * positions).update(repeating: bias[oc], count: columns.count) }
                }
                BLAS.sgemm(
                    m: o, n: columns.count, k: c, a: weight, lda: c, b: input + n * c * positions + columns.lowerBound,
                    ldb: positions, beta: accumulate || bias != nil ? 1 : 0, c: out, ldc: positions)
                if let bias, accumulate {
                    for oc in 0..<o {
                        let row = out + oc * positions
                        for s in 0..<columns.count { row[s] += bias[oc] }
                    }
                }
            }
        }
    }
}

/// Backward pointwise convolution; `+=` into each non-nil gradient (`=` when `accumulate` is false).
///
/// In the forward pass this was `out[n] = w . in[n] + b`, so `dIn[n] += w^T . dOut[n]`,
/// `dW += sum_n dOut[n] . in[n]^T` and `dB[o] += sum_{n, s} dOut[n, o, s]`.
/// dW is summed per thread over its items (in order) and the threads' sums are added in thread
/// order: the result depends on the thread count, never on timing.
/// - Parameters: dInput N x C x HW or nil; dWeight O x C or nil; dBias O or nil; dOutput N x O x HW;
///   input needed for dWeight, weight for dInput.
func pointwiseConvolutionBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
    geometry g: ConvolutionGeometry, accumulate: Bool
) {
    let (c, o) = (g.inputChannels, g.outputChannels)
    let work = PointwiseWork(g, threads: Threading.count)
    let positions = work.positions
    let threads = min(Threading.count, work.count)
    let weightCount = o * c
    ScratchPool.shared.withBuffer(dWeight == nil ? 1 : threads * weightCount) { partials in
        // One parallel region: thread t takes items t*count/threads ..< (t+1)*count/threads.
        parallelFor(threads) { t in
            withBLASOnCallingThread {
                let items = (t * work.count / threads)..<((t + 1) * work.count / threads)
                let partial = partials + t * weightCount
                for (step, index) in items.enumerated() {
                    let (n, columns) = work.item(index)
                    let dOut = dOutput + n * o * positions + columns.lowerBound
                    if let dInput, let weight {
                        // in the forward pass: out[n] = w . in[n], so dIn[n] += w^T . dOut[n]
                        BLAS.sgemm(
                            transposeA: true, m: c, n: columns.count, k: o, a: weight, lda: c, b: dOut,
                            ldb: positions, beta: accumulate ? 1 : 0,
                            c: dInput + n * c * positions + columns.lowerBound, ldc: positions)
                    }
                    if dWeight != nil, let input {
                        // in the forward pass: out[n] = w . in[n], so dW += dOut[n] . in[n]^T
                        BLAS.sgemm(
                            transposeB: true, m: o, n: c, k: columns.count, a: dOut, lda: positions,
                            b: input + n * c * positions + columns.lowerBound, ldb: positions,
                            beta: step == 0 ? 0 : 1, c: partial, ldc: c)
                    }
                }
            }
        }
        if let dWeight {
            if !accumulate { dWeight.update(repeating: 0, count: weightCount) }
            for t in 0..<threads {
                let partial = partials + t * weightCount
                for i in 0..<weightCount { dWeight[i] += partial[i] }
            }
        }
    }
    if let dBias {
        if !accumulate { dBias.update(repeating: 0, count: o) }
        accumulateChannelSums(dBias, of: dOutput, batch: g.batch, channels: o, planeSize: positions)
    }
}
