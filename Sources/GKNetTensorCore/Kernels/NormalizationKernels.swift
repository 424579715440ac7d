// Layer and batch normalisation kernels, as forward/backward pairs (llm.c layernorm style: the
// forward saves mean and rstd = 1 / sqrt(var + eps), the backward reuses them). Statistics and
// gradient sums accumulate in Double. Legend (Shape.swift): N batch, C channels, H x W size; a
// layer norm's rows are normalised over their last `width` values.
import Foundation

/// Σ (p[i] - mean)^2 over n elements, in Double.
@inline(__always)
func sumOfSquaredDeviations(_ p: UnsafePointer<Float>, count n: Int, mean: Double) -> Double {
    // Eight Double lanes, as in `sumInDouble`.
    var lanes0 = SIMD4<Double>(), lanes1 = SIMD4<Double>()
    var i = 0
    while i + 8 <= n {
        let d0 = SIMD4<Double>(load4(p + i)) - mean, d1 = SIMD4<Double>(load4(p + i + 4)) - mean
        lanes0 += d0 * d0
        lanes1 += d1 * d1
        i += 8
    }
    var total = (lanes0 + lanes1).sum()
    while i < n {
        let d = Double(p[i]) - mean
        total += d * d
        i += 1
    }
    return total
}

// MARK: - layer norm: x viewed as [rows, width], statistics per row

/// out[r, j] = (x[r, j] - mean_r) * rstd_r * w[j] + b[j], mean and biased variance over j.
func layerNormForward(
    output: UnsafeMutableBufferPointer<Float>, mean: UnsafeMutableBufferPointer<Float>,
    rstd: UnsafeMutableBufferPointer<Float>,
    input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>,
    width: Int, epsilon: Float
) {
    guard width > 0, let x = input.baseAddress, let y = output.baseAddress else { return }
    parallelChunks(mean.count, minimumPerThread: Swift.max(1, cheapElementwiseGrain / width)) { rows in
        for row in rows {
            let (xr, yr) = (x + row * width, y + row * width)
            let m = sumInDouble(xr, count: width) / Double(width)
            let variance = sumOfSquaredDeviations(xr, count: width, mean: m) / Double(width)
            let (mf, rf) = (Float(m), Float(1 / (variance + Double(epsilon)).squareRoot()))
            mean[row] = mf
            rstd[row] = rf
            for j in 0..<width { yr[j] = (xr[j] - mf) * rf * weight[j] + bias[j] }
        }
    }
}

/// Gradients of layer norm; `dInput`, `dWeight`, `dBias` are each optional (nil: not needed).
func layerNormBackward(
    dInput: UnsafeMutableBufferPointer<Float>?, dWeight: UnsafeMutableBufferPointer<Float>?,
    dBias: UnsafeMutableBufferPointer<Float>?,
    dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>, mean: UnsafeBufferPointer<Float>,
    rstd: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>, width: Int
) {
    let rows = mean.count
    guard width > 0, rows > 0, let x = input.baseAddress, let dy = dOutput.baseAddress else { return }
    // Rows split into blocks; each block sums its dWeight / dBias into its own Double slice.
    let blocks = Swift.min(Threading.count, Swift.max(1, rows * width / cheapElementwiseGrain), rows)
    let partials = UnsafeMutableBufferPointer<Double>.allocate(capacity: 2 * blocks * width)
    partials.initialize(repeating: 0)
    defer { partials.deallocate() }
    parallelFor(blocks) { block in
        let dWeightPartial = partials.baseAddress! + 2 * block * width
        let dBiasPartial = dWeightPartial + width
        for row in (block * rows / blocks)..<((block + 1) * rows / blocks) {
            let (xr, dyr) = (x + row * width, dy + row * width)
            let (m, r) = (mean[row], rstd[row])
            // forward: xhat = (x - mean) * rstd; out = xhat * w + b, so
            //   d w += d out * xhat, d b += d out, d xhat = d out * w
            var sumG = 0.0, sumGXhat = 0.0
            for j in 0..<width {
                let xhat = (xr[j] - m) * r
                let g = dyr[j] * weight[j]
                sumG += Double(g)
                sumGXhat += Double(g * xhat)
                dWeightPartial[j] += Double(dyr[j] * xhat)
                dBiasPartial[j] += Double(dyr[j])
            }
            guard let dInput else { continue }
            // mean and rstd depend on x, so (llm.c): d x = rstd * (d xhat - mean(d xhat) - xhat * mean(d xhat * xhat))
            let (meanG, meanGXhat) = (Float(sumG / Double(width)), Float(sumGXhat / Double(width)))
            let dxr = dInput.baseAddress! + row * width
            for j in 0..<width {
                let xhat = (xr[j] - m) * r
                let g = dyr[j] * weight[j]
                dxr[j] += r * (g - meanG - xhat * meanGXhat)
            }
        }
    }
    for block in 0..<blocks {
        let base = 2 * block * width
        if let dWeight { for j in 0..<width { dWeight[j] += Float(partials[base + j]) } }
        if let dBias { for j in 0..<width { dBias[j] += Float(partials[base + width + j]) } }
    }
}

// MARK: - batch norm: x viewed as [N, C, S], statistics per channel over N and S

struct BatchNormGeometry {
    var batch: Int
    var channels: Int
    var spatial: Int
    /// Elements per channel (N * S).
    var perChannel: Int { batch * spatial }
}

/// Per-channel mean and biased variance (two passes, Double).
func batchNormStatistics(
    mean: UnsafeMutableBufferPointer<Float>, variance: UnsafeMutableBufferPointer<Float>,
    input: UnsafeBufferPointer<Float>, geometry g: BatchNormGeometry
) {
    guard let x = input.baseAddress, g.perChannel > 0 else { return }
    parallelFor(g.channels) { c in
        let m = channelSum(x, channel: c, geometry: g) / Double(g.perChannel)
        mean[c] = Float(m)
        variance[c] = Float(channelSquaredDeviations(x, channel: c, mean: m, geometry: g) / Double(g.perChannel))
    }
}

/// Σ x[n, c, s] over n and s, in Double.
@inline(__always)
private func channelSum(_ x: UnsafePointer<Float>, channel c: Int, geometry g: BatchNormGeometry) -> Double {
    var total = 0.0
    for n in 0..<g.batch { total += sumInDouble(x + (n * g.channels + c) * g.spatial, count: g.spatial) }
    return total
}

/// Σ (x[n, c, s] - mean)^2 over n and s, in Double.
@inline(__always)
private func channelSquaredDeviations(
    _ x: UnsafePointer<Float>, channel c: Int, mean: Double, geometry g: BatchNormGeometry
) -> Double {
    var squares = 0.0
    for n in 0..<g.batch {
        squares += sumOfSquaredDeviations(x + (n * g.channels + c) * g.spatial, count: g.spatial, mean: mean)
    }
    return squares
}

/// `batchNormStatistics` over the union of every process's batch (synchronized batch norm): the
/// same two passes, each pass's per-channel sums (and the value count) added up across processes
/// by `sumAcrossProcesses` before dividing. - Returns: the values per channel over all processes.
func synchronizedBatchNormStatistics(
    mean: UnsafeMutableBufferPointer<Float>, variance: UnsafeMutableBufferPointer<Float>,
    input: UnsafeBufferPointer<Float>, geometry g: BatchNormGeometry, sumAcrossProcesses: CrossProcessSum
) -> Double {
    let x = input.baseAddress
    // [Σ x per channel..., values per channel], then [Σ (x - mean)^2 per channel...]
    var sums = [Double](repeating: 0, count: g.channels + 1)
    sums.withUnsafeMutableBufferPointer { sums in
        if let x { parallelFor(g.channels) { c in sums[c] = channelSum(x, channel: c, geometry: g) } }
        sums[g.channels] = Double(g.perChannel)
        sumAcrossProcesses(sums)
    }
    let count = sums[g.channels]
    let means = (0..<g.channels).map { sums[$0] / count }
    var squares = [Double](repeating: 0, count: g.channels)
    squares.withUnsafeMutableBufferPointer { squares in
        if let x {
            parallelFor(g.channels) { c in
                squares[c] = channelSquaredDeviations(x, channel: c, mean: means[c], geometry: g)
            }
        }
        sumAcrossProcesses(squares)
    }
    for c in 0..<g.channels {
        mean[c] = Float(means[c])
        variance[c] = Float(squares[c] / count)
    }
    return count
}

/// What the backward pass of a synchronized batch norm needs: the hook that adds per-channel sums
/// up across processes, and the number of values per channel over all processes.
struct BatchNormSynchronization {
    var sumAcrossProcesses: CrossProcessSum
    var count: Double
}

/// out[n, c, s] = (x[n, c, s] - mean[c]) * rstd[c] * w[c] + b[c].
func batchNormForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, mean: UnsafeBufferPointer<Float>,
    rstd: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>, geometry g: BatchNormGeometry
) {
    guard g.spatial > 0 else { return }
    parallelChunks(g.batch * g.channels, minimumPerThread: Swift.max(1, cheapElementwiseGrain / g.spatial)) { planes in
        for plane in planes {
            let c = plane % g.channels
            let scale = rstd[c] * weight[c]
            let shift = bias[c] - mean[c] * scale
            let base = plane * g.spatial
            for s in 0..<g.spatial { output[base + s] = input[base + s] * scale + shift }
        }
    }
}

/// Gradients of batch norm. In training the batch statistics depend on x; in evaluation they are
/// constants (the running statistics). With `synchronization` (training only), the statistics were
/// those of every process's batch, so the two per-channel sums of d x are added up across
/// processes too; d weight and d bias stay this process's sums.
func batchNormBackward(
    dInput: UnsafeMutableBufferPointer<Float>?, dWeight: UnsafeMutableBufferPointer<Float>?,
    dBias: UnsafeMutableBufferPointer<Float>?,
    dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>, mean: UnsafeBufferPointer<Float>,
    rstd: UnsafeBufferPointer<Float>,
    weight: UnsafeBufferPointer<Float>, geometry g: BatchNormGeometry, training: Bool,
    synchronization: BatchNormSynchronization? = nil
) {
    guard let x = input.baseAddress, let dy = dOutput.baseAddress else { return }
    // forward: xhat = (x - mean) * rstd; out = xhat * w + b, so
    //   d w = Σ d out * xhat, d b = Σ d out (over n and s)
    func sums(_ c: Int) -> (dy: Double, dyXhat: Double) {
        let (m, r) = (mean[c], rstd[c])
        var sumDy = 0.0, sumDyXhat = 0.0
        for n in 0..<g.batch {
            let base = (n * g.channels + c) * g.spatial
            for s in 0..<g.spatial {
                sumDy += Double(dy[base + s])
                sumDyXhat += Double(dy[base + s] * ((x[base + s] - m) * r))
            }
        }
        dWeight?[c] += Float(sumDyXhat)
        dBias?[c] += Float(sumDy)
        return (sumDy, sumDyXhat)
    }
    // training: mean and rstd depend on x, so with M values per channel (N * S, or over every
    // process when synchronized)
    //   d x = w * rstd * (d out - Σ d out / M - xhat * Σ (d out * xhat) / M);
    // evaluation: d x = w * rstd * d out
    func inputGradient(_ c: Int, meanDy: Float, meanDyXhat: Float) {
        guard let dInput else { return }
        let (m, r) = (mean[c], rstd[c])
        let scale = weight[c] * r
        for n in 0..<g.batch {
            let base = (n * g.channels + c) * g.spatial
            for s in 0..<g.spatial {
                let xhat = (x[base + s] - m) * r
                dInput[base + s] += scale * (dy[base + s] - meanDy - xhat * meanDyXhat)
            }
        }
    }
    batchNormBackwardPasses(
        geometry: g, training: training, synchronization: synchronization, sums: sums,
        inputGradient: { inputGradient($0, meanDy: $1, meanDyXhat: $2) })
}

/// The passes of a batch-norm backward over the channels: `sums(c)` gives channel c's Σ d z and
/// Σ d z xhat (and accumulates d weight, d bias); `inputGradient(c, mean d z, mean d z xhat)` writes
/// d x. One fused pass per channel (the data stays in cache), or, when synchronized, the sums of
/// every channel first, added up across processes, then d x with the global means. In evaluation
/// the means are 0 (the statistics are constants).
private func batchNormBackwardPasses(
    geometry g: BatchNormGeometry, training: Bool, synchronization: BatchNormSynchronization?,
    sums: (Int) -> (dy: Double, dyXhat: Double), inputGradient: (Int, Float, Float) -> Void
) {
    if let synchronization, training {
        let channelSums = synchronizedChannelSums(channels: g.channels, synchronization, sums)
        parallelFor(g.channels) { c in
            inputGradient(
                c, Float(channelSums[c] / synchronization.count),
                Float(channelSums[g.channels + c] / synchronization.count))
        }
        return
    }
    guard g.perChannel > 0 else { return }
    parallelFor(g.channels) { c in
        let (sumDy, sumDyXhat) = sums(c)
        inputGradient(
            c, training ? Float(sumDy / Double(g.perChannel)) : 0,
            training ? Float(sumDyXhat / Double(g.perChannel)) : 0)
    }
}

/// The per-channel gradient sums [Σ d z..., Σ d z xhat...] of this process's batch (computed by
/// `local`, which also accumulates this process's d weight and d bias), added up across processes.
private func synchronizedChannelSums(
    channels: Int, _ synchronization: BatchNormSynchronization, _ local: (Int) -> (dy: Double, dyXhat: Double)
) -> [Double] {
    var channelSums = [Double](repeating: 0, count: 2 * channels)
    channelSums.withUnsafeMutableBufferPointer { channelSums in
        parallelFor(channels) { c in (channelSums[c], channelSums[channels + c]) = local(c) }
        synchronization.sumAcrossProcesses(channelSums)
    }
    return channelSums
}

// MARK: - batch norm followed by ELU, fused

/// out[n, c, s] = elu(x[n, c, s] * scale[c] + shift[c] (+ residual[n, c, s])) with
/// elu(z) = z > 0 ? z : alpha (e^z - 1): the forward of batch norm (scale = rstd w,
/// shift = b - mean scale), an optional residual sum and ELU in one pass.
func batchNormELUForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, residual: UnsafeBufferPointer<Float>?,
    scale: UnsafeBufferPointer<Float>, shift: UnsafeBufferPointer<Float>, alpha: Float, geometry g: BatchNormGeometry
) {
    guard g.spatial > 0, let x = input.baseAddress, let y = output.baseAddress else { return }
    let r = residual?.baseAddress
    parallelChunks(g.batch * g.channels, minimumPerThread: Swift.max(1, 4096 / g.spatial)) { planes in
        for plane in planes {
            let c = plane % g.channels
            let (a, b) = (scale[c], shift[c])
            let (xp, yp) = (x + plane * g.spatial, y + plane * g.spatial)
            if let r {
                let rp = r + plane * g.spatial
                for s in 0..<g.spatial {
                    let z = xp[s] * a + b + rp[s]
                    // Only z <= 0 reaches the exponential (NaN passes through it).
                    let negative = alpha * fastExpMinusOneOfNonPositive(z > 0 ? 0 : z)
                    yp[s] = z > 0 ? z : negative
                }
            } else {
                for s in 0..<g.spatial {
                    let z = xp[s] * a + b
                    let negative = alpha * fastExpMinusOneOfNonPositive(z > 0 ? 0 : z)
                    yp[s] = z > 0 ? z : negative
                }
            }
        }
    }
}

/// Gradients of out = elu(batchNorm(x) (+ residual)), from x and out (the normalised values are not
/// kept). Overwrites `dInput` and `dResidual` unless `accumulate`; `dWeight` and `dBias` accumulate.
/// Each may be nil.
///
/// In the forward pass z = xhat w + b (+ residual), xhat = (x - mean) rstd, out = elu(z), so
/// d z = d out * (out > 0 ? 1 : out + alpha) (z > 0 exactly where out > 0, and alpha e^z = out + alpha),
/// d residual = d z, and batch norm's backward with d z: d w = Σ d z xhat, d b = Σ d z and, in
/// training, d x = w rstd (d z - Σ d z / count - xhat Σ (d z xhat) / count), count = N·H·W values
/// per channel; in evaluation d x = w rstd d z. With `synchronization`, as in `batchNormBackward`.
func batchNormELUBackward(
    dInput: UnsafeMutableBufferPointer<Float>?, dResidual: UnsafeMutableBufferPointer<Float>?,
    dWeight: UnsafeMutableBufferPointer<Float>?, dBias: UnsafeMutableBufferPointer<Float>?,
    dOutput: UnsafeBufferPointer<Float>, input: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>,
    mean: UnsafeBufferPointer<Float>, rstd: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
    alpha: Float,
    geometry g: BatchNormGeometry, training: Bool, accumulate: Bool, synchronization: BatchNormSynchronization? = nil
) {
    guard let x = input.baseAddress, let dy = dOutput.baseAddress, let y = output.baseAddress else {
        return
    }
    func sums(_ c: Int) -> (dy: Double, dyXhat: Double) {
        let (m, r) = (mean[c], rstd[c])
        var sumDz = 0.0, sumDzXhat = 0.0
        for n in 0..<g.batch {
            let base = (n * g.channels + c) * g.spatial
            let (xp, yp, dyp) = (x + base, y + base, dy + base)
            let dr = dResidual.map { $0.baseAddress! + base }
            // Float partial sums over blocks of 256 (eight lanes each, then their sum), added up in
            // Double. A single Float accumulator kept the compiler from vectorizing the loop.
            var start = 0
            while start < g.spatial {
                let end = Swift.min(g.spatial, start + 256)
                var lanes0 = SIMD8<Float>(), lanes1 = SIMD8<Float>()
                var s = start
                while s + 8 <= end {
                    let (yv, dyv) = (load8(yp + s), load8(dyp + s))
                    let dz = (dyv * (yv + alpha)).replacing(with: dyv, where: yv .> 0)
                    lanes0 += dz
                    lanes1 += dz * ((load8(xp + s) - m) * r)
                    s += 8
                }
                var s0 = lanes0.sum(), s1 = lanes1.sum()
                for t in s..<end {
                    let dz = yp[t] > 0 ? dyp[t] : dyp[t] * (yp[t] + alpha)
                    s0 += dz
                    s1 += dz * ((xp[t] - m) * r)
                }
                if let dr {
                    if accumulate {
                        for s in start..<end { dr[s] += yp[s] > 0 ? dyp[s] : dyp[s] * (yp[s] + alpha) }
                    } else {
                        for s in start..<end { dr[s] = yp[s] > 0 ? dyp[s] : dyp[s] * (yp[s] + alpha) }
                    }
                }
                sumDz += Double(s0)
                sumDzXhat += Double(s1)
                start = end
            }
        }
        dWeight?[c] += Float(sumDzXhat)
        dBias?[c] += Float(sumDz)
        return (sumDz, sumDzXhat)
    }
    func inputGradient(_ c: Int, meanDz: Float, meanDzXhat: Float) {
        guard let dInput else { return }
        let (m, r) = (mean[c], rstd[c])
        let scale = weight[c] * r
        for n in 0..<g.batch {
            let base = (n * g.channels + c) * g.spatial
            let (xp, yp, dyp, dxp) = (x + base, y + base, dy + base, dInput.baseAddress! + base)
            if accumulate {
                for s in 0..<g.spatial {
                    let dz = yp[s] > 0 ? dyp[s] : dyp[s] * (yp[s] + alpha)
                    dxp[s] += scale * (dz - meanDz - (xp[s] - m) * r * meanDzXhat)
                }
            } else {
                for s in 0..<g.spatial {
                    let dz = yp[s] > 0 ? dyp[s] : dyp[s] * (yp[s] + alpha)
                    dxp[s] = scale * (dz - meanDz - (xp[s] - m) * r * meanDzXhat)
                }
            }
        }
    }
    batchNormBackwardPasses(
        geometry: g, training: training, synchronization: synchronization, sums: sums,
        inputGradient: { inputGradient($0, meanDz: $1, meanDzXhat: $2) })
}
