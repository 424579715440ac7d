// Differentiable 2-D convolution and transposed convolution (PyTorch `conv2d`, `conv_transpose2d`).
// The kernels live in Kernels/ConvolutionKernels.swift (oneDNN, with im2col + sgemm as fallback).
import Foundation

/// 2-D convolution (PyTorch `torch.nn.functional.conv2d`), zero padding, square kernels:
///
///     out[n, o, y, x] = bias[o]
///         + sum_{c < C/G, i, j} weight[o, c, i, j] * x[n, g(o)*C/G + c, y*s - p + i*d, x*s - p + j*d]
///
/// - Parameters:
///   - x: N x C x H x W.
///   - weight: O x C/G x K x K (PyTorch OIHW).
///   - bias: O, or nil.
///   - stride, padding, dilation: s, p, d, the same along both axes.
///   - groups: G; C and O must be multiples of it.
/// - Returns: N x O x Ho x Wo with Ho = (H + 2p - d*(K-1) - 1) / s + 1 (likewise Wo).
public func conv2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
    groups: Int = 1
) -> Tensor {
    let profiled = OpProfiler.begin()
    defer {
        OpProfiler.end(
            profiled,
            "conv2d \(weight.shape[2])x\(weight.shape[3]) s\(stride) \(x.shape[1])->\(weight.shape[0]) "
                + "@\(x.shape[2])x\(x.shape[3])"
        )
    }
    let geometry = convolutionGeometry(
        "conv2d", x, weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
    checkBias("conv2d", bias, channels: geometry.outputChannels, weight: weight)
    precondition(
        geometry.outputHeight >= 1 && geometry.outputWidth >= 1,
        "conv2d: input \(x.shape) and weight \(weight.shape) give an empty output (padding \(padding), dilation "
            + "\(dilation), stride \(stride))"
    )
    let training = GradientMode.isEnabled && (x.requiresGrad || weight.requiresGrad || (bias?.requiresGrad ?? false))
    var backend = ConvolutionBackend.preferred
    if backend == .winograd && winogradSupports(geometry)
        && geometry.batch * ((geometry.outputHeight + 3) / 4) * ((geometry.outputWidth + 3) / 4)
            < WinogradPolicy.minimumTiles
    {
        backend = .oneDNN(blockedLayout: true)
    }
    let input = x.data, filter = weight.data, biasData = bias?.data
    let output = [Float](unsafeUninitializedCapacity: geometry.outputCount) { buffer, initialized in
        input.withUnsafeBufferPointer { xp in
            filter.withUnsafeBufferPointer { wp in
                withOptionalBuffer(biasData) { bp in
                    convolutionForward(
                        output: buffer.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!,
                        bias: bp?.baseAddress,
                        geometry: geometry, training: training, backend: backend)
                }
            }
        }
        initialized = geometry.outputCount
    }
    let needs = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    let hasBias = bias != nil
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor(
        shape: [geometry.batch, geometry.outputChannels, geometry.outputHeight, geometry.outputWidth], data: output
    )
    .recorded("conv2d", inputs: inputs) { dOut in
        // Fresh buffers that the kernels overwrite (accumulate: false): no zero-filling pass.
        var dx = needs.0 ? uninitializedBuffer(geometry.inputCount) : nil
        var dw = needs.1 ? uninitializedBuffer(geometry.weightCount) : nil
        var db = needs.2 ? uninitializedBuffer(geometry.outputChannels) : nil
        withOptionalMutableBuffers(&dx, &dw, &db) { dxp, dwp, dbp in
            dOut.withUnsafeBufferPointer { gp in
                input.withUnsafeBufferPointer { xp in
                    filter.withUnsafeBufferPointer { wp in
                        convolutionBackward(
                            dInput: dxp?.baseAddress, dWeight: dwp?.baseAddress, dBias: dbp?.baseAddress,
                            dOutput: gp.baseAddress!, input: xp.baseAddress!,
                            weight: wp.baseAddress!, geometry: geometry, accumulate: false, backend: backend)
                    }
                }
            }
        }
        return hasBias ? [dx, dw, db] : [dx, dw]
    }
}

/// 2-D transposed convolution (PyTorch `torch.nn.functional.conv_transpose2d`), the adjoint of
/// `conv2d` with the same stride, padding, dilation and groups:
///
///     out[n, g*O/G + o, y*s - p + i*d, x*s - p + j*d] += x[n, g*C/G + c, y, x] * weight[g*C/G + c, o, i, j]
///
/// then `+ bias`.
/// - Parameters:
///   - x: N x C x H x W.
///   - weight: C x O/G x K x K (PyTorch ConvTranspose2d layout).
///   - bias: O, or nil.
///   - outputPadding: extra rows/columns at the bottom/right; must be below the stride or the dilation.
/// - Returns: N x O x Ho x Wo with Ho = (H - 1)*s - 2p + d*(K-1) + outputPadding + 1 (likewise Wo).
public func convTranspose2d(
    _ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0, outputPadding: Int = 0,
    dilation: Int = 1, groups: Int = 1
) -> Tensor {
    let profiled = OpProfiler.begin()
    defer {
        OpProfiler.end(
            profiled,
            "convTranspose2d \(weight.shape[2])x\(weight.shape[3]) s\(stride) "
                + "\(x.shape[1])->\(weight.shape[1] * groups) @\(x.shape[2])x\(x.shape[3])"
        )
    }
    precondition(
        x.rank == 4 && weight.rank == 4,
        "convTranspose2d: input \(x.shape) and weight \(weight.shape) must both have rank 4 (N x C x H x W, C x O/G x "
            + "K x K)"
    )
    precondition(
        groups >= 1 && stride >= 1 && dilation >= 1 && padding >= 0,
        "convTranspose2d: input \(x.shape) and weight \(weight.shape): invalid stride \(stride), padding \(padding), "
            + "dilation \(dilation) or groups \(groups)"
    )
    precondition(
        x.count > 0 && weight.count > 0,
        "convTranspose2d: input \(x.shape) and weight \(weight.shape) must not be empty")
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let k = weight.shape[2]
    precondition(
        weight.shape[3] == k, "convTranspose2d: input \(x.shape) and weight \(weight.shape): the kernel must be square")
    precondition(
        weight.shape[0] == c && c % groups == 0,
        "convTranspose2d: input \(x.shape) and weight \(weight.shape): weight needs C = \(c) rows (a multiple of "
            + "groups \(groups))"
    )
    precondition(
        outputPadding >= 0 && (outputPadding < stride || outputPadding < dilation),
        "convTranspose2d: input \(x.shape) and weight \(weight.shape): outputPadding \(outputPadding) must be below "
            + "the stride \(stride) or the dilation \(dilation)"
    )
    let o = weight.shape[1] * groups
    let outH = (h - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1
    let outW = (w - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1
    precondition(
        outH >= 1 && outW >= 1, "convTranspose2d: input \(x.shape) and weight \(weight.shape) give an empty output")
    checkBias("convTranspose2d", bias, channels: o, weight: weight)
    let backend = ConvolutionBackend.preferred
    // The convolution whose backward-data pass this is: from the output (O channels) to x (C channels).
    let geometry = ConvolutionGeometry(
        batch: n, inputChannels: o, inputHeight: outH, inputWidth: outW, outputChannels: c, kernelSize: k,
        stride: stride, padding: padding, dilation: dilation, groups: groups, outputHeight: h, outputWidth: w)
    let input = x.data, filter = weight.data, biasData = bias?.data
    let output = [Float](unsafeUninitializedCapacity: geometry.inputCount) { buffer, initialized in
        input.withUnsafeBufferPointer { xp in
            filter.withUnsafeBufferPointer { wp in
                withOptionalBuffer(biasData) { bp in
                    transposedConvolutionForward(
                        output: buffer.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!,
                        bias: bp?.baseAddress, geometry: geometry,
                        backend: backend)
                }
            }
        }
        initialized = geometry.inputCount
    }
    let needs = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    let hasBias = bias != nil
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    return Tensor(shape: [n, o, outH, outW], data: output).recorded("convTranspose2d", inputs: inputs) { dOut in
        var dx = needs.0 ? uninitializedBuffer(geometry.outputCount) : nil
        var dw = needs.1 ? uninitializedBuffer(geometry.weightCount) : nil
        var db = needs.2 ? uninitializedBuffer(o) : nil
        withOptionalMutableBuffers(&dx, &dw, &db) { dxp, dwp, dbp in
            dOut.withUnsafeBufferPointer { gp in
                input.withUnsafeBufferPointer { xp in
                    filter.withUnsafeBufferPointer { wp in
                        transposedConvolutionBackward(
                            dInput: dxp?.baseAddress, dWeight: dwp?.baseAddress, dBias: dbp?.baseAddress,
                            dOutput: gp.baseAddress!, input: xp.baseAddress!,
                            weight: wp.baseAddress!, geometry: geometry, accumulate: false, backend: backend)
                    }
                }
            }
        }
        return hasBias ? [dx, dw, db] : [dx, dw]
    }
}

// MARK: - Argument checks and buffer plumbing

/// When `conv2d` runs a `.winograd` convolution on oneDNN instead.
public enum WinogradPolicy {
    /// Below this many 4x4 output tiles (N x Ho/4 x Wo/4) a `.winograd` convolution runs on oneDNN:
    /// Winograd transforms the whole weight (36 O C values) and its 36 GEMMs get only that many
    /// columns, so for small maps (GKNet's 16x16 and 32x32 levels at batch 1) the direct
    /// convolution is faster (`paper` inference at 256, 2 threads, batch 1: 0.43 s with this
    /// threshold, 0.66 s without; docs/benchmarks.md, Model). `RuntimeSettings.winogradMinimumTiles`
    /// (default 128); per task (tests force 0 to exercise Winograd on small shapes).
    @TaskLocal public static var minimumTiles: Int = RuntimeSettings.current.winogradMinimumTiles
}

/// Checks conv2d arguments and returns the geometry.
private func convolutionGeometry(
    _ op: String, _ x: Tensor, _ weight: Tensor, stride: Int, padding: Int, dilation: Int, groups: Int
) -> ConvolutionGeometry {
    precondition(
        x.rank == 4 && weight.rank == 4,
        "\(op): input \(x.shape) and weight \(weight.shape) must both have rank 4 (N x C x H x W, O x C/G x K x K)")
    precondition(
        groups >= 1 && stride >= 1 && dilation >= 1 && padding >= 0,
        "\(op): input \(x.shape) and weight \(weight.shape): invalid stride \(stride), padding \(padding), dilation "
            + "\(dilation) or groups \(groups)"
    )
    precondition(
        x.count > 0 && weight.count > 0, "\(op): input \(x.shape) and weight \(weight.shape) must not be empty")
    let c = x.shape[1], o = weight.shape[0], k = weight.shape[2]
    precondition(weight.shape[3] == k, "\(op): input \(x.shape) and weight \(weight.shape): the kernel must be square")
    precondition(
        c % groups == 0 && o % groups == 0 && weight.shape[1] * groups == c,
        "\(op): input \(x.shape) and weight \(weight.shape) do not match: weight needs C/G = \(c)/\(groups) input "
            + "channels and O a multiple of groups \(groups)"
    )
    return ConvolutionGeometry(
        batch: x.shape[0], inputChannels: c, inputHeight: x.shape[2], inputWidth: x.shape[3], outputChannels: o,
        kernelSize: k, stride: stride, padding: padding, dilation: dilation, groups: groups)
}

private func checkBias(_ op: String, _ bias: Tensor?, channels: Int, weight: Tensor) {
    guard let bias else { return }
    precondition(
        bias.shape == [channels],
        "\(op): bias \(bias.shape) and weight \(weight.shape) do not match: bias must be [\(channels)]")
}

/// An array of `count` floats whose contents the caller overwrites completely.
@inline(__always)
private func uninitializedBuffer(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
