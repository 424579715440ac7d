// Pooling kernels over NCHW planes: average (count_include_pad), max (first-max argmax) and adaptive average.
// Legend (Shape.swift): planes (N·C), H x W input, Ho x Wo output, K window, s stride, p padding
// (zeros for the average, -inf for the maximum).

/// Window geometry of a square pooling over planes of H x W (PyTorch floor mode, no ceil_mode).
public struct Pool2dGeometry: Equatable, Sendable {
    public var planes: Int
    public var inputHeight: Int
    public var inputWidth: Int
    public var kernelSize: Int
    public var stride: Int
    public var padding: Int

    public init(planes: Int, inputHeight: Int, inputWidth: Int, kernelSize: Int, stride: Int, padding: Int) {
        self.planes = planes
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
    }

    /// `Ho = floor((H + 2·p - K) / s) + 1`.
    public var outputHeight: Int { (inputHeight + 2 * padding - kernelSize) / stride + 1 }
    /// `Wo = floor((W + 2·p - K) / s) + 1`.
    public var outputWidth: Int { (inputWidth + 2 * padding - kernelSize) / stride + 1 }
    var inputPlane: Int { inputHeight * inputWidth }
    var outputPlane: Int { outputHeight * outputWidth }
}

/// `out[p,oy,ox] = (1/K²) Σ_{window} x[p,iy,ix]`, padding counted as zeros (count_include_pad=True).
///
/// The divisor is the window area clipped to the padded input, as PyTorch computes it (always K² in floor mode).
public func avgPool2dForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, geometry g: Pool2dGeometry
) {
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    parallelChunks(g.planes * oh, minimumPerThread: max(1, 4096 / max(1, ow * g.kernelSize * g.kernelSize))) { rows in
        for row in rows {
            let plane = row / oh
            let oy = row % oh
            let source = input + plane * g.inputPlane
            let (y0, y1, rowSpan) = poolWindow(oy, g.stride, g.padding, g.kernelSize, g.inputHeight)
            for ox in 0..<ow {
                let (x0, x1, columnSpan) = poolWindow(ox, g.stride, g.padding, g.kernelSize, g.inputWidth)
                var total: Float = 0
                for iy in y0..<y1 {
                    for ix in x0..<x1 { total += source[iy * g.inputWidth + ix] }
                }
                output[plane * g.outputPlane + oy * ow + ox] = total / Float(rowSpan * columnSpan)
            }
        }
    }
}

/// In the forward pass: `out[p,oy,ox] = Σ_{window} x[p,iy,ix] / area`, so `dx[p,iy,ix] += dOut[p,oy,ox] / area`
/// for every window that covers (iy, ix).
public func avgPool2dBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, geometry g: Pool2dGeometry
) {
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    // Windows overlap when s < K, so each thread owns whole planes.
    parallelChunks(g.planes, minimumPerThread: max(1, 4096 / max(1, g.outputPlane * g.kernelSize * g.kernelSize))) {
        planes in
        for plane in planes {
            let target = dInput + plane * g.inputPlane
            for oy in 0..<oh {
                let (y0, y1, rowSpan) = poolWindow(oy, g.stride, g.padding, g.kernelSize, g.inputHeight)
                for ox in 0..<ow {
                    let (x0, x1, columnSpan) = poolWindow(ox, g.stride, g.padding, g.kernelSize, g.inputWidth)
                    let share = dOutput[plane * g.outputPlane + oy * ow + ox] / Float(rowSpan * columnSpan)
                    for iy in y0..<y1 {
                        for ix in x0..<x1 { target[iy * g.inputWidth + ix] += share }
                    }
                }
            }
        }
    }
}

/// `out[p,oy,ox] = max_{window} x[p,iy,ix]` over the unpadded part of the window; `argmax` receives
/// the in-plane index `iy·W + ix` of the first maximum in row-major window order (a NaN wins, as in PyTorch).
public func maxPool2dForward(
    output: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Int32>, input: UnsafePointer<Float>,
    geometry g: Pool2dGeometry
) {
    let (oh, ow) = (g.outputHeight, g.outputWidth)
    parallelChunks(g.planes * oh, minimumPerThread: max(1, 4096 / max(1, ow * g.kernelSize * g.kernelSize))) { rows in
        for row in rows {
            let plane = row / oh
            let oy = row % oh
            let source = input + plane * g.inputPlane
            let (y0, y1, _) = poolWindow(oy, g.stride, g.padding, g.kernelSize, g.inputHeight)
            for ox in 0..<ow {
                let (x0, x1, _) = poolWindow(ox, g.stride, g.padding, g.kernelSize, g.inputWidth)
                var best = -Float.infinity
                var bestIndex = y0 * g.inputWidth + x0
                for iy in y0..<y1 {
                    for ix in x0..<x1 {
                        let value = source[iy * g.inputWidth + ix]
                        if value > best || value.isNaN {
                            best = value
                            bestIndex = iy * g.inputWidth + ix
                        }
                    }
                }
                let o = plane * g.outputPlane + oy * ow + ox
                output[o] = best
                argmax[o] = Int32(bestIndex)
            }
        }
    }
}

/// In the forward pass: `out[p,o] = x[p, argmax[p,o]]`, so `dx[p, argmax[p,o]] += dOut[p,o]`.
public func maxPool2dBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, argmax: UnsafePointer<Int32>,
    geometry g: Pool2dGeometry
) {
    parallelChunks(g.planes, minimumPerThread: max(1, 16384 / max(1, g.outputPlane))) { planes in
        for plane in planes {
            let target = dInput + plane * g.inputPlane
            for o in plane * g.outputPlane..<(plane + 1) * g.outputPlane {
                target[Int(argmax[o])] += dOutput[o]
            }
        }
    }
}

/// The input rows [start, end) of output row `o` and the padded window's extent (the avg divisor factor).
@inline(__always)
func poolWindow(_ o: Int, _ stride: Int, _ padding: Int, _ kernel: Int, _ size: Int) -> (Int, Int, Int) {
    let start = o * stride - padding
    let end = min(start + kernel, size + padding)
    return (max(start, 0), min(end, size), end - start)
}

extension ResampleGeometry {
    /// Adaptive pooling's bins: output cell i covers input [floor(i·in/out), ceil((i+1)·in/out))
    /// (PyTorch's `start_index` and `end_index`).
    @inline(__always)
    static func bin(_ i: Int, input: Int, output: Int) -> Range<Int> {
        (i * input) / output..<((i + 1) * input + output - 1) / output
    }
}

/// `out[p,oy,ox] = mean of x[p, rows(oy), columns(ox)]` with PyTorch's adaptive bins (which may overlap).
public func adaptiveAvgPool2dForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, geometry g: ResampleGeometry
) {
    let (h, w, oh, ow) = (g.inputHeight, g.inputWidth, g.outputHeight, g.outputWidth)
    parallelChunks(g.planes * oh, minimumPerThread: max(1, 4096 / max(1, w * (h / oh + 1)))) { rows in
        for row in rows {
            let plane = row / oh
            let ys = ResampleGeometry.bin(row % oh, input: h, output: oh)
            let source = input + plane * h * w
            for ox in 0..<ow {
                let xs = ResampleGeometry.bin(ox, input: w, output: ow)
                var total: Float = 0
                for iy in ys {
                    for ix in xs { total += source[iy * w + ix] }
                }
                output[row * ow + ox] = total / Float(ys.count * xs.count)
            }
        }
    }
}

/// In the forward pass: `out[p,oy,ox] = Σ_{bin} x[p,iy,ix] / area`, so `dx[p,iy,ix] += dOut[p,oy,ox] / area`
/// for every bin containing (iy, ix).
public func adaptiveAvgPool2dBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, geometry g: ResampleGeometry
) {
    let (h, w, oh, ow) = (g.inputHeight, g.inputWidth, g.outputHeight, g.outputWidth)
    parallelChunks(g.planes, minimumPerThread: max(1, 4096 / max(1, h * w))) { planes in
        for plane in planes {
            let target = dInput + plane * h * w
            for oy in 0..<oh {
                let ys = ResampleGeometry.bin(oy, input: h, output: oh)
                for ox in 0..<ow {
                    let xs = ResampleGeometry.bin(ox, input: w, output: ow)
                    let share = dOutput[(plane * oh + oy) * ow + ox] / Float(ys.count * xs.count)
                    for iy in ys {
                        for ix in xs { target[iy * w + ix] += share }
                    }
                }
            }
        }
    }
}
