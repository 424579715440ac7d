// Differentiable spatial resizing of NCHW tensors, matching PyTorch `interpolate(..., align_corners=False)`.
// Legend (Shape.swift): N batch, C channels, H x W input, Ho x Wo output.

/// Bilinear resize, `torch.nn.functional.interpolate(x, size=(Ho, Wo), mode='bilinear', align_corners=False)`.
///
/// Each output pixel reads the input at `src = max(0, (o + 0.5)·in/out - 0.5)` along each axis and blends
/// the two neighbours linearly (edges repeat). Works for up- and down-sampling at any ratio; no antialias.
/// - Parameters:
///   - x: `N x C x H x W`.
///   - height: Ho >= 1.
///   - width: Wo >= 1.
/// - Returns: `N x C x Ho x Wo`.
public func resizeBilinear(_ x: Tensor, height: Int, width: Int) -> Tensor {
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "resizeBilinear") }
    return resize(x, height: height, width: width, name: "resizeBilinear", taps: InterpolationTaps.linear)
}

/// Bicubic resize, `torch.nn.functional.interpolate(x, size=(Ho, Wo), mode='bicubic', align_corners=False)`.
///
/// Keys' cubic convolution (a = -0.75) over the 4 x 4 neighbourhood of `src = (o + 0.5)·in/out - 0.5`,
/// with the border pixels repeated. Not clamped: outputs may overshoot the input range, as in PyTorch.
/// - Parameters:
///   - x: `N x C x H x W`.
///   - height: Ho >= 1.
///   - width: Wo >= 1.
/// - Returns: `N x C x Ho x Wo`.
public func resizeBicubic(_ x: Tensor, height: Int, width: Int) -> Tensor {
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "resizeBicubic") }
    return resize(x, height: height, width: width, name: "resizeBicubic", taps: InterpolationTaps.cubic)
}

extension Tensor {
    /// `resizeBilinear(self, height:width:)`: see the free function.
    public func resizedBilinear(height: Int, width: Int) -> Tensor {
        GKNetTensorCore.resizeBilinear(self, height: height, width: width)
    }

    /// `resizeBicubic(self, height:width:)`: see the free function.
    public func resizedBicubic(height: Int, width: Int) -> Tensor {
        GKNetTensorCore.resizeBicubic(self, height: height, width: width)
    }
}

/// The shared separable resize: checks, forward kernel, recorded pullback.
private func resize(
    _ x: Tensor, height: Int, width: Int, name: String, taps: (_ input: Int, _ output: Int) -> InterpolationTaps
) -> Tensor {
    precondition(x.rank == 4, "\(name): input \(x.shape) must be N x C x H x W")
    precondition(
        height >= 1 && width >= 1 && x.shape[2] >= 1 && x.shape[3] >= 1,
        "\(name): input \(x.shape) and output size [\(height), \(width)] must be non-empty")
    let geometry = ResizeGeometry(
        planes: x.shape[0] * x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        outputHeight: height, outputWidth: width)
    let rows = taps(x.shape[2], height)
    let columns = taps(x.shape[3], width)
    let outputShape = [x.shape[0], x.shape[1], height, width]
    var values = [Float](repeating: 0, count: outputShape.elementCount)
    if !values.isEmpty {
        values.withUnsafeMutableBufferPointer { out in
            x.data.withUnsafeBufferPointer {
                resizeForward(
                    output: out.baseAddress!, input: $0.baseAddress!, rows: rows, columns: columns, geometry: geometry)
            }
        }
    }
    return Tensor(shape: outputShape, data: values).recorded(name, inputs: [x]) { dOut in
        var dx = [Float](repeating: 0, count: x.count)
        if !dOut.isEmpty {
            dx.withUnsafeMutableBufferPointer { pdx in
                dOut.withUnsafeBufferPointer {
                    resizeBackward(
                        dInput: pdx.baseAddress!, dOutput: $0.baseAddress!, rows: rows, columns: columns,
                        geometry: geometry)
                }
            }
        }
        return [dx]
    }
}
