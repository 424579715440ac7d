// Softmax and log-softmax over one axis, as forward/backward pairs, numerically stable
// (the row maximum is subtracted before exp; sums of exponentials accumulate in Double).
// The tensor is viewed as [outer, size, inner] with the softmax axis in the middle.
import Foundation

/// [outer, size, inner] view of a tensor for a softmax along its middle axis.
struct SoftmaxGeometry {
    var outer: Int
    var size: Int
    var inner: Int

    init(shape: [Int], axis: Int) {
        outer = shape[..<axis].reduce(1, *)
        size = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
    }
}

/// Columns per work item when the softmax axis is not the last one.
private let softmaxTileWidth = 64

/// softmax: out = exp(x - max) / Σ exp(x - max); log-softmax: out = x - max - log Σ exp(x - max).
func softmaxForward(
    output: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>, geometry g: SoftmaxGeometry,
    logarithm: Bool
) {
    let (n, inner) = (g.size, g.inner)
    guard n > 0, let x = input.baseAddress, let y = output.baseAddress else { return }
    if inner == 1 {
        parallelChunks(g.outer, minimumPerThread: Swift.max(1, transcendentalElementwiseGrain / n)) { rows in
            for row in rows {
                let (xr, yr) = (x + row * n, y + row * n)
                let largest = maximum(xr, count: n)
                // The exponentials go to the output first (a vectorised loop), then are summed.
                exponentials(yr, xr, count: n, shift: largest)
                let total = sumInDouble(yr, count: n)
                if logarithm {
                    // NOTE: (x - max) - log Σ, in this order, keeps the largest logit's result exact.
                    let logTotal = Float(Foundation.log(total))
                    for j in 0..<n { yr[j] = (xr[j] - largest) - logTotal }
                } else {
                    let scale = Float(1 / total)
                    for j in 0..<n { yr[j] *= scale }
                }
            }
        }
        return
    }
    let tiles = (inner + softmaxTileWidth - 1) / softmaxTileWidth
    parallelChunks(
        g.outer * tiles, minimumPerThread: Swift.max(1, transcendentalElementwiseGrain / (n * softmaxTileWidth))
    ) { items in
        let maximum = UnsafeMutablePointer<Float>.allocate(capacity: softmaxTileWidth)
        let total = UnsafeMutablePointer<Double>.allocate(capacity: softmaxTileWidth)
        defer {
            maximum.deallocate()
            total.deallocate()
        }
        for item in items {
            let (o, column) = (item / tiles, (item % tiles) * softmaxTileWidth)
            let width = Swift.min(softmaxTileWidth, inner - column)
            let (xb, yb) = (x + o * n * inner + column, y + o * n * inner + column)
            for c in 0..<width {
                maximum[c] = xb[c]
                total[c] = 0
            }
            for j in 1..<n {
                for c in 0..<width { maximum[c] = Swift.max(maximum[c], xb[j * inner + c]) }
            }
            for j in 0..<n {
                for c in 0..<width {
                    let e = fastExp(xb[j * inner + c] - maximum[c])
                    if !logarithm { yb[j * inner + c] = e }
                    total[c] += Double(e)
                }
            }
            if logarithm {
                for c in 0..<width { total[c] = Foundation.log(total[c]) }
                for j in 0..<n {
                    for c in 0..<width { yb[j * inner + c] = (xb[j * inner + c] - maximum[c]) - Float(total[c]) }
                }
            } else {
                for c in 0..<width { maximum[c] = Float(1 / total[c]) }
                for j in 0..<n {
                    for c in 0..<width { yb[j * inner + c] *= maximum[c] }
                }
            }
        }
    }
}

/// Uses the forward output y.
/// softmax: d x_j += y_j (d y_j - Σ_k d y_k y_k); log-softmax: d x_j += d y_j - exp(y_j) Σ_k d y_k.
func softmaxBackward(
    dInput: UnsafeMutableBufferPointer<Float>, dOutput: UnsafeBufferPointer<Float>, output: UnsafeBufferPointer<Float>,
    geometry g: SoftmaxGeometry, logarithm: Bool
) {
    let (n, inner) = (g.size, g.inner)
    guard n > 0, let dx = dInput.baseAddress, let dy = dOutput.baseAddress, let y = output.baseAddress else { return }
    // forward (softmax): y_j = exp(x_j) / Σ_k exp(x_k), so d y_j / d x_i = y_j (δ_ij - y_i) and
    //   d x_i = Σ_j d y_j y_j (δ_ij - y_i) = y_i (d y_i - Σ_j d y_j y_j)
    // forward (log-softmax): y_j = x_j - log Σ_k exp(x_k), so d y_j / d x_i = δ_ij - exp(y_i) and
    //   d x_i = d y_i - exp(y_i) Σ_j d y_j
    if inner == 1 {
        parallelChunks(g.outer, minimumPerThread: Swift.max(1, transcendentalElementwiseGrain / n)) { rows in
            for row in rows {
                let (dxr, dyr, yr) = (dx + row * n, dy + row * n, y + row * n)
                var dot = 0.0
                if logarithm {
                    for j in 0..<n { dot += Double(dyr[j]) }
                    let total = Float(dot)
                    for j in 0..<n { dxr[j] += dyr[j] - fastExp(yr[j]) * total }
                } else {
                    for j in 0..<n { dot += Double(dyr[j] * yr[j]) }
                    let total = Float(dot)
                    for j in 0..<n { dxr[j] += yr[j] * (dyr[j] - total) }
                }
            }
        }
        return
    }
    let tiles = (inner + softmaxTileWidth - 1) / softmaxTileWidth
    parallelChunks(
        g.outer * tiles, minimumPerThread: Swift.max(1, transcendentalElementwiseGrain / (n * softmaxTileWidth))
    ) { items in
        let dots = UnsafeMutablePointer<Double>.allocate(capacity: softmaxTileWidth)
        defer { dots.deallocate() }
        for item in items {
            let (o, column) = (item / tiles, (item % tiles) * softmaxTileWidth)
            let width = Swift.min(softmaxTileWidth, inner - column)
            let offset = o * n * inner + column
            let (dxb, dyb, yb) = (dx + offset, dy + offset, y + offset)
            for c in 0..<width { dots[c] = 0 }
            for j in 0..<n {
                for c in 0..<width {
                    dots[c] += logarithm ? Double(dyb[j * inner + c]) : Double(dyb[j * inner + c] * yb[j * inner + c])
                }
            }
            for j in 0..<n {
                for c in 0..<width {
                    let k = j * inner + c
                    if logarithm {
                        dxb[k] += dyb[k] - fastExp(yb[k]) * Float(dots[c])
                    } else {
                        dxb[k] += yb[k] * (dyb[k] - Float(dots[c]))
                    }
                }
            }
        }
    }
}
