// Differentiable 2-D pooling on NCHW tensors: average, max and adaptive average (PyTorch semantics).
// Legend (Shape.swift): N batch, C channels, H x W input, Ho x Wo output, K window, s stride, p padding.

/// Average pooling, `torch.nn.functional.avg_pool2d(x, K, s, p, count_include_pad=True)`.
///
/// `out[n,c,oy,ox] = (1/K²) Σ_{i,j<K} x_pad[n, c, oy·s + i, ox·s + j]` with zero padding counted in the mean.
/// - Parameters:
///   - x: `N x C x H x W`.
///   - kernelSize: the square window K.
///   - stride: s (PyTorch's default is K).
///   - padding: zeros on every side, at most K/2.
/// - Returns: `N x C x Ho x Wo`, `Ho = floor((H + 2·p - K)/s) + 1` (floor mode).
public func avgPool2d(_ x: Tensor, kernelSize: Int, stride: Int, padding: Int = 0) -> Tensor {
    let geometry = poolGeometry(x, kernelSize: kernelSize, stride: stride, padding: padding, "avgPool2d")
    let outputShape = [x.shape[0], x.shape[1], geometry.outputHeight, geometry.outputWidth]
    var values = [Float](repeating: 0, count: outputShape.elementCount)
    if !values.isEmpty {
        values.withUnsafeMutableBufferPointer { out in
            x.data.withUnsafeBufferPointer {
                avgPool2dForward(output: out.baseAddress!, input: $0.baseAddress!, geometry: geometry)
            }
        }
    }
    return Tensor(shape: outputShape, data: values).recorded("avgPool2d", inputs: [x]) { dOut in
        var dx = [Float](repeating: 0, count: x.count)
        if !dOut.isEmpty {
            dx.withUnsafeMutableBufferPointer { pdx in
                dOut.withUnsafeBufferPointer {
                    avgPool2dBackward(dInput: pdx.baseAddress!, dOutput: $0.baseAddress!, geometry: geometry)
                }
            }
        }
        return [dx]
    }
}

/// Max pooling, `torch.nn.functional.max_pool2d(x, K, s, p)` (padding never wins).
///
/// `out[n,c,oy,ox] = max_{i,j<K} x_pad[n, c, oy·s + i, ox·s + j]`; the gradient goes to the first
/// maximum of each window in row-major order (PyTorch's tie rule).
/// - Parameters:
///   - x: `N x C x H x W`.
///   - kernelSize: the square window K.
///   - stride: s (PyTorch's default is K).
///   - padding: implicit -inf on every side, at most K/2.
/// - Returns: `N x C x Ho x Wo`, `Ho = floor((H + 2·p - K)/s) + 1`.
public func maxPool2d(_ x: Tensor, kernelSize: Int, stride: Int, padding: Int = 0) -> Tensor {
    let geometry = poolGeometry(x, kernelSize: kernelSize, stride: stride, padding: padding, "maxPool2d")
    let outputShape = [x.shape[0], x.shape[1], geometry.outputHeight, geometry.outputWidth]
    var values = [Float](repeating: 0, count: outputShape.elementCount)
    var argmax = [Int32](repeating: 0, count: outputShape.elementCount)
    if !values.isEmpty {
        values.withUnsafeMutableBufferPointer { out in
            argmax.withUnsafeMutableBufferPointer { indices in
                x.data.withUnsafeBufferPointer {
                    maxPool2dForward(
                        output: out.baseAddress!, argmax: indices.baseAddress!, input: $0.baseAddress!,
                        geometry: geometry)
                }
            }
        }
    }
    return Tensor(shape: outputShape, data: values).recorded("maxPool2d", inputs: [x]) { dOut in
        var dx = [Float](repeating: 0, count: x.count)
        if !dOut.isEmpty {
            dx.withUnsafeMutableBufferPointer { pdx in
                dOut.withUnsafeBufferPointer { pd in
                    argmax.withUnsafeBufferPointer {
                        maxPool2dBackward(
                            dInput: pdx.baseAddress!, dOutput: pd.baseAddress!, argmax: $0.baseAddress!,
                            geometry: geometry)
                    }
                }
            }
        }
        return [dx]
    }
}

/// Adaptive average pooling, `torch.nn.functional.adaptive_avg_pool2d(x, (Ho, Wo))`.
///
/// `out[n,c,oy,ox]` is the mean of `x[n, c, ys, xs]` with `ys = floor(oy·H/Ho) ..< ceil((oy+1)·H/Ho)`
/// (likewise for xs); bins overlap when Ho does not divide H.
/// - Parameters:
///   - x: `N x C x H x W`.
///   - outputHeight: Ho >= 1.
///   - outputWidth: Wo >= 1.
/// - Returns: `N x C x Ho x Wo`.
public func adaptiveAvgPool2d(_ x: Tensor, outputHeight: Int, outputWidth: Int) -> Tensor {
    precondition(x.rank == 4, "adaptiveAvgPool2d: input \(x.shape) must be N x C x H x W")
    precondition(
        outputHeight >= 1 && outputWidth >= 1 && x.shape[2] >= 1 && x.shape[3] >= 1,
        "adaptiveAvgPool2d: input \(x.shape) and output size [\(outputHeight), \(outputWidth)] must be non-empty")
    let geometry = AdaptivePool2dGeometry(
        planes: x.shape[0] * x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        outputHeight: outputHeight, outputWidth: outputWidth)
    let outputShape = [x.shape[0], x.shape[1], outputHeight, outputWidth]
    var values = [Float](repeating: 0, count: outputShape.elementCount)
    if !values.isEmpty {
        values.withUnsafeMutableBufferPointer { out in
            x.data.withUnsafeBufferPointer {
                adaptiveAvgPool2dForward(output: out.baseAddress!, input: $0.baseAddress!, geometry: geometry)
            }
        }
    }
    return Tensor(shape: outputShape, data: values).recorded("adaptiveAvgPool2d", inputs: [x]) { dOut in
        var dx = [Float](repeating: 0, count: x.count)
        if !dOut.isEmpty {
            dx.withUnsafeMutableBufferPointer { pdx in
                dOut.withUnsafeBufferPointer {
                    adaptiveAvgPool2dBackward(dInput: pdx.baseAddress!, dOutput: $0.baseAddress!, geometry: geometry)
                }
            }
        }
        return [dx]
    }
}

extension Tensor {
    /// `avgPool2d(self, ...)`: see the free function.
    public func avgPool2d(kernelSize: Int, stride: Int, padding: Int = 0) -> Tensor {
        GKNetTensorCore.avgPool2d(self, kernelSize: kernelSize, stride: stride, padding: padding)
    }

    /// `maxPool2d(self, ...)`: see the free function.
    public func maxPool2d(kernelSize: Int, stride: Int, padding: Int = 0) -> Tensor {
        GKNetTensorCore.maxPool2d(self, kernelSize: kernelSize, stride: stride, padding: padding)
    }

    /// `adaptiveAvgPool2d(self, ...)`: see the free function.
    public func adaptiveAvgPool2d(outputHeight: Int, outputWidth: Int) -> Tensor {
        GKNetTensorCore.adaptiveAvgPool2d(self, outputHeight: outputHeight, outputWidth: outputWidth)
    }
}

/// Checks a pooling call and returns its geometry.
private func poolGeometry(_ x: Tensor, kernelSize: Int, stride: Int, padding: Int, _ op: String) -> Pool2dGeometry {
    precondition(x.rank == 4, "\(op): input \(x.shape) must be N x C x H x W")
    precondition(
        kernelSize >= 1 && stride >= 1 && padding >= 0 && padding <= kernelSize / 2,
        "\(op): kernelSize \(kernelSize), stride \(stride), padding \(padding) invalid (need K >= 1, S >= 1, 0 <= pad "
            + "<= K/2)"
    )
    let geometry = Pool2dGeometry(
        planes: x.shape[0] * x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
        kernelSize: kernelSize, stride: stride, padding: padding)
    precondition(
        x.shape[2] + 2 * padding >= kernelSize && x.shape[3] + 2 * padding >= kernelSize,
        "\(op): input \(x.shape) with padding \(padding) is smaller than the window \([kernelSize, kernelSize])")
    return geometry
}
