// Separable resampling kernels (bilinear and bicubic, PyTorch align_corners=False) over NCHW planes.
// Legend (Shape.swift): planes (N·C), H x W input, Ho x Wo output, taps per output coordinate
// (2 for bilinear, 4 for bicubic).

/// For every output coordinate along one axis: `taps` input indices (already clamped into range)
/// and `taps` weights, so that `out[o] = Σ_t weights[o·taps + t] · in[indices[o·taps + t]]`.
public struct InterpolationTaps: Sendable {
    public let tapCount: Int
    public let indices: [Int]
    public let weights: [Float]

    /// PyTorch `area_pixel_compute_source_index` for align_corners=False: `scale·(o + 0.5) - 0.5` in Float
    /// with `scale = in/out` (the size-given form of `interpolate`).
    @inline(__always)
    static func sourceCoordinate(_ o: Int, scale: Float) -> Float {
        scale * (Float(o) + 0.5) - 0.5
    }

    /// Linear interpolation taps (`mode='bilinear'`, `align_corners=False`, no antialias).
    ///
    /// `src = max(0, scale·(o + 0.5) - 0.5)`, `i0 = floor(src)`, `i1 = min(i0 + 1, in - 1)`,
    /// weights `(1 - λ, λ)` with `λ = src - i0`.
    public static func linear(input: Int, output: Int) -> InterpolationTaps {
        let scale = Float(input) / Float(output)
        var indices = [Int](repeating: 0, count: 2 * output)
        var weights = [Float](repeating: 0, count: 2 * output)
        for o in 0..<output {
            let source = max(sourceCoordinate(o, scale: scale), 0)
            let i0 = min(Int(source), input - 1)
            let lambda = min(max(source - Float(i0), 0), 1)
            indices[2 * o] = i0
            indices[2 * o + 1] = i0 < input - 1 ? i0 + 1 : i0
            weights[2 * o] = 1 - lambda
            weights[2 * o + 1] = lambda
        }
        return InterpolationTaps(tapCount: 2, indices: indices, weights: weights)
    }

    /// Cubic convolution taps (`mode='bicubic'`, `align_corners=False`, Keys' kernel with a = -0.75).
    ///
    /// `src = scale·(o + 0.5) - 0.5` (not clamped), `i = floor(src)`, `t = src - i`; taps `i-1 ... i+2`
    /// clamped to the border, weights `(W(t+1), W(t), W(1-t), W(2-t))` with
    /// `W(x) = (a+2)|x|³ - (a+3)|x|² + 1` for |x| <= 1 and `a|x|³ - 5a|x|² + 8a|x| - 4a` for 1 < |x| < 2.
    public static func cubic(input: Int, output: Int) -> InterpolationTaps {
        let a: Float = -0.75
        func near(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
        func far(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        let scale = Float(input) / Float(output)
        var indices = [Int](repeating: 0, count: 4 * output)
        var weights = [Float](repeating: 0, count: 4 * output)
        for o in 0..<output {
            let source = sourceCoordinate(o, scale: scale)
            let i = min(Int(source.rounded(.down)), input - 1)
            let t = min(max(source - Float(i), 0), 1)
            for j in 0..<4 { indices[4 * o + j] = min(max(i - 1 + j, 0), input - 1) }
            weights[4 * o] = far(t + 1)
            weights[4 * o + 1] = near(t)
            weights[4 * o + 2] = near(1 - t)
            weights[4 * o + 3] = far(2 - t)
        }
        return InterpolationTaps(tapCount: 4, indices: indices, weights: weights)
    }
}

/// Planes of H x W resampled to Ho x Wo (resizes and adaptive pooling).
public struct ResampleGeometry: Equatable, Sendable {
    public var planes: Int
    public var inputHeight: Int
    public var inputWidth: Int
    public var outputHeight: Int
    public var outputWidth: Int

    public init(planes: Int, inputHeight: Int, inputWidth: Int, outputHeight: Int, outputWidth: Int) {
        self.planes = planes
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputHeight = outputHeight
        self.outputWidth = outputWidth
    }
}

/// `out[p,oy,ox] = Σ_b wx[ox,b] · Σ_a wy[oy,a] · x[p, iy[oy,a], ix[ox,b]]`, separably: each output row
/// first blends its source rows (a vectorised pass over the input width), then gathers columns.
public func resizeForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: InterpolationTaps,
    columns: InterpolationTaps, geometry g: ResampleGeometry
) {
    let (w, oh, ow) = (g.inputWidth, g.outputHeight, g.outputWidth)
    let (rowTaps, columnTaps) = (rows.tapCount, columns.tapCount)
    rows.indices.withUnsafeBufferPointer { iy in
        rows.weights.withUnsafeBufferPointer { wy in
            columns.indices.withUnsafeBufferPointer { ix in
                columns.weights.withUnsafeBufferPointer { wx in
                    parallelChunks(g.planes * oh, minimumPerThread: max(1, 2048 / max(1, ow))) { chunk in
                        let blended = UnsafeMutablePointer<Float>.allocate(capacity: max(1, w))
                        defer { blended.deallocate() }
                        for row in chunk {
                            let plane = row / oh
                            let oy = row % oh
                            let source = input + plane * g.inputHeight * w
                            let target = output + row * ow
                            // blended[x] = Σ_a wy[oy,a] · x[iy[oy,a], x]
                            let first = source + iy[oy * rowTaps] * w
                            let firstWeight = wy[oy * rowTaps]
                            for x in 0..<w { blended[x] = firstWeight * first[x] }
                            for a in 1..<rowTaps {
                                let line = source + iy[oy * rowTaps + a] * w
                                let weight = wy[oy * rowTaps + a]
                                for x in 0..<w { blended[x] += weight * line[x] }
                            }
                            if columnTaps == 2 {
                                for ox in 0..<ow {
                                    target[ox] =
                                        wx[2 * ox] * blended[ix[2 * ox]] + wx[2 * ox + 1] * blended[ix[2 * ox + 1]]
                                }
                            } else {
                                for ox in 0..<ow {
                                    var total: Float = 0
                                    for b in 0..<columnTaps {
                                        total += wx[ox * columnTaps + b] * blended[ix[ox * columnTaps + b]]
                                    }
                                    target[ox] = total
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// In the forward pass: `out[p,oy,ox] = Σ_{a,b} wy[oy,a] · wx[ox,b] · x[p, iy[oy,a], ix[ox,b]]`, so
/// `dx[p, iy[oy,a], ix[ox,b]] += wy[oy,a] · wx[ox,b] · dOut[p,oy,ox]` (clamped taps add up on the border).
/// Separably: each gradient row is scattered onto the input columns, then added to its source rows.
public func resizeBackward(
    dInput: UnsafeMutablePointer<Float>, dOutput: UnsafePointer<Float>, rows: InterpolationTaps,
    columns: InterpolationTaps, geometry g: ResampleGeometry
) {
    let (w, oh, ow) = (g.inputWidth, g.outputHeight, g.outputWidth)
    let (rowTaps, columnTaps) = (rows.tapCount, columns.tapCount)
    rows.indices.withUnsafeBufferPointer { iy in
        rows.weights.withUnsafeBufferPointer { wy in
            columns.indices.withUnsafeBufferPointer { ix in
                columns.weights.withUnsafeBufferPointer { wx in
                    // Output rows scatter into shared input rows, so each thread owns whole planes.
                    parallelChunks(g.planes, minimumPerThread: max(1, 8192 / max(1, oh * ow))) { planes in
                        let scattered = UnsafeMutablePointer<Float>.allocate(capacity: max(1, w))
                        defer { scattered.deallocate() }
                        for plane in planes {
                            let target = dInput + plane * g.inputHeight * w
                            for oy in 0..<oh {
                                let gradientRow = dOutput + (plane * oh + oy) * ow
                                // scattered[ix[ox,b]] += wx[ox,b] · dOut[oy,ox]
                                for x in 0..<w { scattered[x] = 0 }
                                for ox in 0..<ow {
                                    let value = gradientRow[ox]
                                    for b in 0..<columnTaps {
                                        scattered[ix[ox * columnTaps + b]] += wx[ox * columnTaps + b] * value
                                    }
                                }
                                for a in 0..<rowTaps {
                                    let line = target + iy[oy * rowTaps + a] * w
                                    let weight = wy[oy * rowTaps + a]
                                    for x in 0..<w { line[x] += weight * scattered[x] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
