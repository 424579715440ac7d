// Differentiable grouped per-pixel dynamic kernels (GKNet's harmony kernel modulation operator).
// Legend (Shape.swift): N batch, C channels, H x W size, G kernel groups, K kernel size.

/// Applies a different K x K kernel at every pixel, shared by the C/G channels of a group.
///
/// `out[n,c,y,x] = Σ_{i,j<K} kernels[n, g(c)·K² + i·K + j, y, x] · x[n, c, y + (i - K/2)·dil, x + (j - K/2)·dil]`
/// with zero padding and `g(c) = c / (C/G)` (docs/model.md, "Harmony kernel modulation"). In PyTorch
/// terms, with `U = F.unfold(x, K, dilation=dil, padding=dil·(K//2))`:
/// `(U.view(N, G, C/G, K², H, W) * kernels.view(N, G, 1, K², H, W)).sum(3)`.
/// - Parameters:
///   - x: `N x C x H x W`.
///   - kernels: `N x (G·K·K) x H x W`, G divides C.
///   - kernelSize: K, odd.
///   - dilation: the tap spacing, >= 1.
/// - Returns: `N x C x H x W`.
public func applyPixelKernels(_ x: Tensor, kernels: Tensor, kernelSize: Int, dilation: Int = 1) -> Tensor {
    let geometry = PixelKernelGeometry(x, kernels: kernels, kernelSize: kernelSize, dilation: dilation)
    return Tensor.op("applyPixelKernels", inputs: [x, kernels], shape: x.shape, macs: geometry.macs) {
        newBuffer(x.count, zeroed: true) { out in
            borrow(x.data, kernels.data) { xp, kp in
                pixelKernelsForward(
                    output: out.baseAddress!, input: xp.baseAddress!, kernels: kp.baseAddress!, geometry: geometry)
            }
        }
    } backward: { dOut in
        let (dx, dKernels) = gradients((x.count, x.requiresGrad), (kernels.count, kernels.requiresGrad)) { dx, dk in
            guard !dOut.isEmpty else { return }
            borrow(dOut, x.data, kernels.data) { dy, xp, kp in
                pixelKernelsBackward(
                    dInput: dx?.baseAddress, dKernels: dk?.baseAddress, dOutput: dy.baseAddress!,
                    input: xp.baseAddress!,
                    kernels: kp.baseAddress!, geometry: geometry)
            }
        }
        return [dx, dKernels]
    }
}

extension PixelKernelGeometry {
    /// The checked geometry of `applyPixelKernels(x, kernels:kernelSize:dilation:)`.
    init(_ x: Tensor, kernels: Tensor, kernelSize: Int, dilation: Int) {
        precondition(
            x.rank == 4 && kernels.rank == 4,
            "applyPixelKernels: input \(x.shape) and kernels \(kernels.shape) must both be rank 4 (N x C x H x W, N x "
                + "G·K·K x H x W)"
        )
        precondition(
            kernelSize >= 1 && kernelSize % 2 == 1 && dilation >= 1,
            "applyPixelKernels: input \(x.shape) and kernels \(kernels.shape): kernelSize \(kernelSize) must be odd "
                + "and dilation \(dilation) >= 1"
        )
        let taps = kernelSize * kernelSize
        let groups = kernels.shape[1] / taps
        precondition(
            kernels.shape[0] == x.shape[0] && kernels.shape[2] == x.shape[2] && kernels.shape[3] == x.shape[3],
            "applyPixelKernels: input \(x.shape) and kernels \(kernels.shape) differ in batch or spatial size")
        precondition(
            kernels.shape[1] % taps == 0 && groups >= 1 && x.shape[1] % groups == 0,
            "applyPixelKernels: input \(x.shape) and kernels \(kernels.shape): kernel channels must be G·\(taps) with "
                + "G dividing \(x.shape[1])"
        )
        self.init(
            batch: x.shape[0], channels: x.shape[1], height: x.shape[2], width: x.shape[3], groups: groups,
            kernelSize: kernelSize, dilation: dilation)
    }

    /// Multiply-accumulates: K x K per output element.
    var macs: Int { batch * channels * height * width * taps }
}

extension Tensor {
    /// `applyPixelKernels(self, kernels:kernelSize:dilation:)`: see the free function.
    public func applyingPixelKernels(_ kernels: Tensor, kernelSize: Int, dilation: Int = 1) -> Tensor {
        GKNetTensorCore.applyPixelKernels(self, kernels: kernels, kernelSize: kernelSize, dilation: dilation)
    }
}
