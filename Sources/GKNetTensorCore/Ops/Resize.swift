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
    resize(x, height: height, width: width, name: "resizeBilinear", taps: InterpolationTaps.linear)
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
    resize(x, height: height, width: width, name: "resizeBicubic", taps: InterpolationTaps.cubic, countsMACs: true)
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
///
/// - Parameter countsMACs: report the resize to a cost trace as the two dense matmuls it is
///   equivalent to (rows, then columns: Ho·H·W + Ho·W·Wo per plane), as the model's reference
///   count does for the bicubic resize of the positional embedding; bilinear resizes count nothing.
private func resize(
    _ x: Tensor, height: Int, width: Int, name: String, taps: (_ input: Int, _ output: Int) -> InterpolationTaps,
    countsMACs: Bool = false
) -> Tensor {
    let geometry = ResampleGeometry(name, x, height: height, width: width)
    let (rows, columns) = (taps(x.shape[2], height), taps(x.shape[3], width))
    let (h, w) = (x.shape[2], x.shape[3])
    return Tensor.op(
        name, inputs: [x], shape: geometry.outputShape(of: x),
        macs: countsMACs ? geometry.planes * height * (h * w + w * width) : 0
    ) {
        newBuffer(geometry.outputCount, zeroed: true) { out in
            borrow(x.data) {
                resizeForward(
                    output: out.baseAddress!, input: $0.baseAddress!, rows: rows, columns: columns, geometry: geometry)
            }
        }
    } backward: { dOut in
        [
            gradient(x.count) { dx in
                guard !dOut.isEmpty else { return }
                borrow(dOut) {
                    resizeBackward(
                        dInput: dx.baseAddress!, dOutput: $0.baseAddress!, rows: rows, columns: columns,
                        geometry: geometry)
                }
            }
        ]
    }
}
