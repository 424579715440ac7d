// Grouped per-pixel dynamic kernels (docs/model.md, "Harmony kernel modulation"), fused: no unfold copies.
// Legend (Shape.swift): N batch, C channels, H x W size, G kernel groups (C/G channels each), K kernel
// size, K² taps t.
// Every loop below walks one image row with a tap's fixed shift, so the innermost loop is a
// contiguous, vectorisable multiply-add over x.

/// Shapes of `x: N x C x H x W` and `kernels: N x (G·K·K) x H x W`, with the tap dilation.
public struct PixelKernelGeometry: Equatable, Sendable {
    public var batch: Int
    public var channels: Int
    public var height: Int
    public var width: Int
    public var groups: Int
    public var kernelSize: Int
    public var dilation: Int

    public init(batch: Int, channels: Int, height: Int, width: Int, groups: Int, kernelSize: Int, dilation: Int) {
        self.batch = batch
        self.channels = channels
        self.height = height
        self.width = width
        self.groups = groups
        self.kernelSize = kernelSize
        self.dilation = dilation
    }

    public var taps: Int { kernelSize * kernelSize }
    public var channelsPerGroup: Int { channels / groups }
    var plane: Int { height * width }

    /// The (row, column) shift of tap `t = i·K + j`: `((i - K/2)·dil, (j - K/2)·dil)`.
    @inline(__always)
    func shift(ofTap t: Int) -> (dy: Int, dx: Int) {
        ((t / kernelSize - kernelSize / 2) * dilation, (t % kernelSize - kernelSize / 2) * dilation)
    }

    /// Offset of row `y` of kernel plane (n, g, t).
    @inline(__always)
    func kernelRow(_ n: Int, _ group: Int, _ t: Int, _ y: Int) -> Int {
        ((n * groups + group) * taps + t) * plane + y * width
    }

    /// The columns x with both x and x + dx inside [0, W).
    @inline(__always)
    func columns(shiftedBy dx: Int) -> Range<Int> { max(0, -dx)..<max(max(0, -dx), min(width, width - dx)) }

    /// Rows per parallel chunk so that one chunk holds a few thousand multiply-adds.
    var rowsPerThread: Int { max(1, 16384 / max(1, taps * width)) }
}

/// `out[n,c,y,x] = Σ_t kernels[n, g(c)·K² + t, y, x] · x[n, c, y + dy_t, x + dx_t]` with zeros outside the image,
/// `g(c) = c / (C/G)`. Overwrites `output`.
public func pixelKernelsForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, kernels: UnsafePointer<Float>,
    geometry g: PixelKernelGeometry
) {
    let (h, w) = (g.height, g.width)
    parallelChunks(g.batch * g.channels * h, minimumPerThread: g.rowsPerThread) { rows in
        for row in rows {
            let y = row % h
            let c = (row / h) % g.channels
            let n = row / (h * g.channels)
            let out = output + row * w
            for x in 0..<w { out[x] = 0 }
            for t in 0..<g.taps {
                let (dy, dx) = g.shift(ofTap: t)
                let sourceY = y + dy
                if sourceY < 0 || sourceY >= h { continue }
                let kernelRow = kernels + g.kernelRow(n, c / g.channelsPerGroup, t, y)
                let inputRow = input + (row - y + sourceY) * w
                let span = g.columns(shiftedBy: dx)
                multiplyAdd(
                    into: out + span.lowerBound, kernelRow + span.lowerBound, inputRow + (span.lowerBound + dx),
                    count: span.count)
            }
        }
    }
}

/// Accumulates `dInput` and/or `dKernels` (pass nil for a gradient that is not wanted).
///
/// In the forward pass: `out[n,c,y,x] = Σ_t kernels[n,gK²+t,y,x] · x[n,c,y+dy,x+dx]`, so
/// - `dKernels[n,gK²+t,y,x] += Σ_{c in g} dOut[n,c,y,x] · x[n,c,y+dy,x+dx]`;
/// - `dx[n,c,y',x'] += Σ_t kernels[n,gK²+t,y'-dy,x'-dx] · dOut[n,c,y'-dy,x'-dx]` (the scatter written as a gather,
///   so each thread owns whole output rows of both gradients and no writes collide).
public func pixelKernelsBackward(
    dInput: UnsafeMutablePointer<Float>?, dKernels: UnsafeMutablePointer<Float>?, dOutput: UnsafePointer<Float>,
    input: UnsafePointer<Float>, kernels: UnsafePointer<Float>, geometry g: PixelKernelGeometry
) {
    let (h, w) = (g.height, g.width)
    if let dKernels {
        let perGroup = g.channelsPerGroup
        parallelChunks(g.batch * g.groups * h, minimumPerThread: max(1, g.rowsPerThread / perGroup)) { rows in
            for row in rows {
                let y = row % h
                let group = (row / h) % g.groups
                let n = row / (h * g.groups)
                for t in 0..<g.taps {
                    let (dy, dx) = g.shift(ofTap: t)
                    let sourceY = y + dy
                    if sourceY < 0 || sourceY >= h { continue }
                    let target = dKernels + g.kernelRow(n, group, t, y)
                    let span = g.columns(shiftedBy: dx)
                    for c in group * perGroup..<(group + 1) * perGroup {
                        let planeOffset = (n * g.channels + c) * g.plane
                        let gradientRow = dOutput + planeOffset + y * w
                        let inputRow = input + planeOffset + sourceY * w
                        multiplyAdd(
                            into: target + span.lowerBound, gradientRow + span.lowerBound,
                            inputRow + (span.lowerBound + dx),
                            count: span.count)
                    }
                }
            }
        }
    }
    if let dInput {
        parallelChunks(g.batch * g.channels * h, minimumPerThread: g.rowsPerThread) { rows in
            for row in rows {
                let y = row % h
                let c = (row / h) % g.channels
                let n = row / (h * g.channels)
                let target = dInput + row * w
                for t in 0..<g.taps {
                    let (dy, dx) = g.shift(ofTap: t)
                    // this row y' was read by output row y = y' - dy, column x = x' - dx
                    let outputY = y - dy
                    if outputY < 0 || outputY >= h { continue }
                    let kernelRow = kernels + g.kernelRow(n, c / g.channelsPerGroup, t, outputY)
                    let gradientRow = dOutput + (row - y + outputY) * w
                    let span = g.columns(shiftedBy: -dx)
                    let read = span.lowerBound - dx
                    multiplyAdd(into: target + span.lowerBound, kernelRow + read, gradientRow + read, count: span.count)
                }
            }
        }
    }
}

/// `target[i] += a[i] · b[i]` for i in 0..<count: the one inner loop of this file, written over
/// in-bounds base pointers with a plain counter so that it vectorises.
@inline(__always)
private func multiplyAdd(
    into target: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int
) {
    for i in 0..<count { target[i] += a[i] * b[i] }
}
