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
    let geometry = Pool2dGeometry("avgPool2d", x, kernelSize: kernelSize, stride: stride, padding: padding)
    return Tensor.op("avgPool2d", inputs: [x], shape: geometry.outputShape(of: x)) {
        newBuffer(geometry.outputCount, zeroed: true) { out in
            borrow(x.data) { avgPool2dForward(output: out.baseAddress!, input: $0.baseAddress!, geometry: geometry) }
        }
    } backward: { dOut in
        [
            gradient(x.count) { dx in
                guard !dOut.isEmpty else { return }
                borrow(dOut) {
                    avgPool2dBackward(dInput: dx.baseAddress!, dOutput: $0.baseAddress!, geometry: geometry)
                }
            }
        ]
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
    let geometry = Pool2dGeometry("maxPool2d", x, kernelSize: kernelSize, stride: stride, padding: padding)
    return Tensor.op("maxPool2d", inputs: [x], shape: geometry.outputShape(of: x)) {
        var argmax = [Int32](repeating: 0, count: geometry.outputCount)
        let values = newBuffer(geometry.outputCount, zeroed: true) { out in
            borrow(x.data) { xp in
                borrowMutable(&argmax) {
                    maxPool2dForward(
                        output: out.baseAddress!, argmax: $0.baseAddress!, input: xp.baseAddress!, geometry: geometry)
                }
            }
        }
        return (values, argmax)
    } backward: { dOut, argmax in
        [
            gradient(x.count) { dx in
                guard !dOut.isEmpty else { return }
                borrow(dOut, argmax) { dy, indices in
                    maxPool2dBackward(
                        dInput: dx.baseAddress!, dOutput: dy.baseAddress!, argmax: indices.baseAddress!,
                        geometry: geometry)
                }
            }
        ]
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
    let geometry = ResampleGeometry("adaptiveAvgPool2d", x, height: outputHeight, width: outputWidth)
    return Tensor.op("adaptiveAvgPool2d", inputs: [x], shape: geometry.outputShape(of: x)) {
        newBuffer(geometry.outputCount, zeroed: true) { out in
            borrow(x.data) {
                adaptiveAvgPool2dForward(output: out.baseAddress!, input: $0.baseAddress!, geometry: geometry)
            }
        }
    } backward: { dOut in
        [
            gradient(x.count) { dx in
                guard !dOut.isEmpty else { return }
                borrow(dOut) {
                    adaptiveAvgPool2dBackward(dInput: dx.baseAddress!, dOutput: $0.baseAddress!, geometry: geometry)
                }
            }
        ]
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

extension Pool2dGeometry {
    /// The checked geometry of a pooling call (`op` names it in the messages).
    init(_ op: String, _ x: Tensor, kernelSize: Int, stride: Int, padding: Int) {
        precondition(x.rank == 4, "\(op): input \(x.shape) must be N x C x H x W")
        precondition(
            kernelSize >= 1 && stride >= 1 && padding >= 0 && padding <= kernelSize / 2,
            "\(op): kernelSize \(kernelSize), stride \(stride), padding \(padding) invalid (need K >= 1, S >= 1, 0 <= "
                + "pad <= K/2)"
        )
        precondition(
            x.shape[2] + 2 * padding >= kernelSize && x.shape[3] + 2 * padding >= kernelSize,
            "\(op): input \(x.shape) with padding \(padding) is smaller than the window \([kernelSize, kernelSize])")
        self.init(
            planes: x.shape[0] * x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3],
            kernelSize: kernelSize, stride: stride, padding: padding)
    }

    var outputCount: Int { planes * outputPlane }

    /// N x C x Ho x Wo for an input x of N x C x H x W.
    func outputShape(of x: Tensor) -> [Int] { [x.shape[0], x.shape[1], outputHeight, outputWidth] }
}

extension ResampleGeometry {
    /// The checked geometry of resampling x (N x C x H x W) to `height` x `width` (`op` names it in the messages).
    init(_ op: String, _ x: Tensor, height: Int, width: Int) {
        precondition(x.rank == 4, "\(op): input \(x.shape) must be N x C x H x W")
        precondition(
            height >= 1 && width >= 1 && x.shape[2] >= 1 && x.shape[3] >= 1,
            "\(op): input \(x.shape) and output size [\(height), \(width)] must be non-empty")
        self.init(
            planes: x.shape[0] * x.shape[1], inputHeight: x.shape[2], inputWidth: x.shape[3], outputHeight: height,
            outputWidth: width)
    }

    var outputCount: Int { planes * outputHeight * outputWidth }

    /// N x C x Ho x Wo for an input x of N x C x H x W.
    func outputShape(of x: Tensor) -> [Int] { [x.shape[0], x.shape[1], outputHeight, outputWidth] }
}
