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
    let geometry = ConvolutionGeometry(
        conv2d: x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    let training = GradientMode.isEnabled && (x.requiresGrad || weight.requiresGrad || (bias?.requiresGrad ?? false))
    var backend = ConvolutionBackend.preferred
    if backend == .winograd && winogradSupports(geometry) {
        // Training: the backend measured fastest for this geometry (`ConvolutionTuning`), where
        // measuring is on; otherwise, and for inference, the fixed rule.
        if training,
            let tuned = ConvolutionTuning.current.backend(
                for: geometry, inputGradient: x.requiresGrad, weightGradient: weight.requiresGrad,
                bias: bias?.requiresGrad ?? false)
        {
            backend = tuned
        } else if WinogradPolicy.sendsToOneDNN(geometry) {
            backend = .oneDNN(blockedLayout: true)
        }
    }
    let (input, filter) = (x.data, weight.data)
    let needs = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    return Tensor.op(
        "conv2d",
        profiledAs: "conv2d \(geometry.kernelSize)x\(geometry.kernelSize) s\(stride) \(x.shape[1])->\(weight.shape[0]) "
            + "@\(x.shape[2])x\(x.shape[3])",
        inputs: bias.map { [x, weight, $0] } ?? [x, weight],
        shape: [geometry.batch, geometry.outputChannels, geometry.outputHeight, geometry.outputWidth],
        macs: geometry.macs, parameter: weight
    ) {
        newBuffer(geometry.outputCount) { out in
            borrow(input, filter, bias?.data) { xp, wp, bp in
                convolutionForward(
                    output: out.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!, bias: bp?.baseAddress,
                    geometry: geometry, training: training, backend: backend)
            }
        }
    } backward: { dOut in
        // The kernels overwrite the gradients (accumulate: false): no zero-filling pass.
        let (dx, dw, db) = gradients(
            (geometry.inputCount, needs.0), (geometry.weightCount, needs.1), (geometry.outputChannels, needs.2),
            zeroed: false
        ) { dx, dw, db in
            borrow(dOut, input, filter) { dy, xp, wp in
                convolutionBackward(
                    dInput: dx?.baseAddress, dWeight: dw?.baseAddress, dBias: db?.baseAddress, dOutput: dy.baseAddress!,
                    input: xp.baseAddress!,
                    weight: wp.baseAddress!, geometry: geometry, accumulate: false, backend: backend)
            }
        }
        return bias == nil ? [dx, dw] : [dx, dw, db]
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
    // The convolution whose backward-data pass this is: from the output (O channels) to x (C channels).
    let geometry = ConvolutionGeometry(
        convTranspose2d: x, weight: weight, bias: bias, stride: stride, padding: padding,
        outputPadding: outputPadding, dilation: dilation, groups: groups)
    let backend = ConvolutionBackend.preferred
    let (input, filter) = (x.data, weight.data)
    let needs = (x.requiresGrad, weight.requiresGrad, bias?.requiresGrad ?? false)
    return Tensor.op(
        "convTranspose2d",
        profiledAs: "convTranspose2d \(geometry.kernelSize)x\(geometry.kernelSize) s\(stride) "
            + "\(x.shape[1])->\(geometry.inputChannels) @\(x.shape[2])x\(x.shape[3])",
        inputs: bias.map { [x, weight, $0] } ?? [x, weight],
        shape: [geometry.batch, geometry.inputChannels, geometry.inputHeight, geometry.inputWidth],
        macs: geometry.macs, parameter: weight
    ) {
        newBuffer(geometry.inputCount) { out in
            borrow(input, filter, bias?.data) { xp, wp, bp in
                transposedConvolutionForward(
                    output: out.baseAddress!, input: xp.baseAddress!, weight: wp.baseAddress!, bias: bp?.baseAddress,
                    geometry: geometry, backend: backend)
            }
        }
    } backward: { dOut in
        let (dx, dw, db) = gradients(
            (geometry.outputCount, needs.0), (geometry.weightCount, needs.1), (geometry.inputChannels, needs.2),
            zeroed: false
        ) { dx, dw, db in
            borrow(dOut, input, filter) { dy, xp, wp in
                transposedConvolutionBackward(
                    dInput: dx?.baseAddress, dWeight: dw?.baseAddress, dBias: db?.baseAddress, dOutput: dy.baseAddress!,
                    input: xp.baseAddress!,
                    weight: wp.baseAddress!, geometry: geometry, accumulate: false, backend: backend)
            }
        }
        return bias == nil ? [dx, dw] : [dx, dw, db]
    }
}

// MARK: - Winograd policy and the checked geometry

/// When `conv2d` runs a `.winograd` convolution on oneDNN instead.
public enum WinogradPolicy {
    /// Below this many 4x4 output tiles (N x Ho/4 x Wo/4) a `.winograd` convolution runs on oneDNN:
    /// Winograd transforms the whole weight (36 O C values) and its 36 GEMMs get only that many
    /// columns, so for small maps (GKNet's 16x16 and 32x32 levels at batch 1) the direct
    /// convolution is faster (`paper` inference at 256, 2 threads, batch 1: 0.43 s with this
    /// threshold, 0.66 s without; docs/benchmarks.md, Model). `RuntimeSettings.winogradMinimumTiles`
    /// (default `automaticMinimumTiles`); per task (tests force 0 to exercise Winograd on small shapes).
    @TaskLocal public static var minimumTiles: Int =
        RuntimeSettings.current.winogradMinimumTiles ?? automaticMinimumTiles

    /// 128, or `Int.max` (every 3x3 convolution on oneDNN) while OpenBLAS runs its SSE-level
    /// fallback kernels on a processor with AVX2 or AVX-512 (`OpenBLASCore.correctedCoreType()`
    /// is not nil: a process that did not settle its `StartupEnvironment`, e.g. a library user's or
    /// a test runner): our Winograd path's GEMMs then run at a fraction of the processor's speed and
    /// oneDNN's own AVX-512 code is faster (Intel Xeon, 2 threads, training steps of 8: 0.77-0.85x
    /// the time). With OpenBLAS on the processor's kernels Winograd is as fast or faster
    /// (docs/benchmarks.md "OpenBLAS's kernels on processors it does not know").
    public static let automaticMinimumTiles: Int = OpenBLASCore.correctedCoreType() != nil ? Int.max : 128

    /// The fixed rule: whether a Winograd-eligible convolution of `geometry` runs on oneDNN
    /// (fewer than `minimumTiles` 4x4 output tiles).
    public static func sendsToOneDNN(_ geometry: ConvolutionGeometry) -> Bool {
        geometry.batch * ((geometry.outputHeight + 3) / 4) * ((geometry.outputWidth + 3) / 4) < minimumTiles
    }
}

extension ConvolutionGeometry {
    /// The checked geometry of `conv2d(x, weight:bias:...)`.
    init(conv2d x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, dilation: Int, groups: Int) {
        let op = "conv2d"
        Self.checkArguments(op, x, weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
        let c = x.shape[1], o = weight.shape[0], k = weight.shape[2]
        precondition(
            c % groups == 0 && o % groups == 0 && weight.shape[1] * groups == c,
            "\(op): input \(x.shape) and weight \(weight.shape) do not match: weight needs C/G = \(c)/\(groups) input "
                + "channels and O a multiple of groups \(groups)"
        )
        Self.checkBias(op, bias, channels: o, weight: weight)
        self.init(
            batch: x.shape[0], inputChannels: c, inputHeight: x.shape[2], inputWidth: x.shape[3], outputChannels: o,
            kernelSize: k, stride: stride, padding: padding, dilation: dilation, groups: groups)
        precondition(
            outputHeight >= 1 && outputWidth >= 1,
            "conv2d: input \(x.shape) and weight \(weight.shape) give an empty output (padding \(padding), dilation "
                + "\(dilation), stride \(stride))"
        )
    }

    /// The checked geometry of `convTranspose2d(x, weight:bias:...)`: that of the convolution whose
    /// backward-data pass it is, from the transposed convolution's output (O channels) to x (C channels).
    init(
        convTranspose2d x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, outputPadding: Int,
        dilation: Int, groups: Int
    ) {
        let op = "convTranspose2d"
        Self.checkArguments(op, x, weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let k = weight.shape[2]
        precondition(
            weight.shape[0] == c && c % groups == 0,
            "\(op): input \(x.shape) and weight \(weight.shape): weight needs C = \(c) rows (a multiple of groups "
                + "\(groups))"
        )
        precondition(
            outputPadding >= 0 && (outputPadding < stride || outputPadding < dilation),
            "\(op): input \(x.shape) and weight \(weight.shape): outputPadding \(outputPadding) must be below the "
                + "stride \(stride) or the dilation \(dilation)"
        )
        let o = weight.shape[1] * groups
        let outH = (h - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1
        let outW = (w - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1
        precondition(outH >= 1 && outW >= 1, "\(op): input \(x.shape) and weight \(weight.shape) give an empty output")
        Self.checkBias(op, bias, channels: o, weight: weight)
        self.init(
            batch: n, inputChannels: o, inputHeight: outH, inputWidth: outW, outputChannels: c, kernelSize: k,
            stride: stride, padding: padding, dilation: dilation, groups: groups, outputHeight: h, outputWidth: w)
    }

    /// Multiply-accumulates of the convolution (also of the transposed convolution it is the adjoint of):
    /// C/G x K x K per output element.
    var macs: Int { outputCount * inputChannelsPerGroup * kernelSize * kernelSize }

    /// The checks both ops share: ranks, a square kernel, non-empty tensors, valid hyper-parameters.
    private static func checkArguments(
        _ op: String, _ x: Tensor, _ weight: Tensor, stride: Int, padding: Int, dilation: Int, groups: Int
    ) {
        let layout = op == "conv2d" ? "O x C/G x K x K" : "C x O/G x K x K"
        precondition(
            x.rank == 4 && weight.rank == 4,
            "\(op): input \(x.shape) and weight \(weight.shape) must both have rank 4 (N x C x H x W, \(layout))")
        precondition(
            groups >= 1 && stride >= 1 && dilation >= 1 && padding >= 0,
            "\(op): input \(x.shape) and weight \(weight.shape): invalid stride \(stride), padding \(padding), "
                + "dilation \(dilation) or groups \(groups)"
        )
        precondition(
            x.count > 0 && weight.count > 0, "\(op): input \(x.shape) and weight \(weight.shape) must not be empty")
        precondition(
            weight.shape[3] == weight.shape[2],
            "\(op): input \(x.shape) and weight \(weight.shape): the kernel must be square")
    }

    private static func checkBias(_ op: String, _ bias: Tensor?, channels: Int, weight: Tensor) {
        guard let bias else { return }
        precondition(
            bias.shape == [channels],
            "\(op): bias \(bias.shape) and weight \(weight.shape) do not match: bias must be [\(channels)]")
    }
}
