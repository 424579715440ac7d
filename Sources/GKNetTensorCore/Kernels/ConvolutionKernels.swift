// 2-D convolution kernels (NCHW, weights OIHW), forward and backward, on three backends: Winograd
// F(4x4, 3x3) for 3x3 stride-1 convolutions (forward, input and weight gradients:
// Kernels/WinogradConvolutionKernels.swift, WinogradWeightGradientKernels.swift), oneDNN
// primitives for everything else (Kernels/OneDNNConvolution.swift), and im2col + BLAS.sgemm (the
// fallback where oneDNN is missing or has no implementation, and a second reference in tests).
// Transposed convolution is expressed through the same kernels (see `transposedConvolutionForward`).
import Foundation

// Legend (Shape.swift): N batch, C input channels, H x W input size, O output channels, Ho x Wo output size,
// K kernel size, s stride, p padding, d dilation, G groups (Cg = C/G, Og = O/G).

/// The shape of one 2-D convolution:
///
///     out[n, o, y, x] = b[o]
///         + sum_{c < Cg, i < K, j < K} w[o, c, i, j] * in[n, g*Cg + c, y*s - p + i*d, x*s - p + j*d]
///
/// with g = o / Og and zero padding. Input N x C x H x W, weight O x Cg x K x K, output N x O x Ho x Wo.
/// The output size is PyTorch's `(H + 2p - d*(K-1) - 1) / s + 1` unless given explicitly (the
/// transposed convolution uses a conv whose output is its input); the padding after the last row
/// and column is whatever that size implies (`paddingBottom`, `paddingRight`, possibly negative).
public struct ConvolutionGeometry: Hashable, Sendable, CustomStringConvertible {
    public let batch: Int
    public let inputChannels: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let outputChannels: Int
    public let outputHeight: Int
    public let outputWidth: Int
    public let kernelSize: Int
    public let stride: Int
    public let padding: Int
    public let dilation: Int
    public let groups: Int

    public init(
        batch: Int, inputChannels: Int, inputHeight: Int, inputWidth: Int, outputChannels: Int, kernelSize: Int,
        stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, outputHeight: Int? = nil,
        outputWidth: Int? = nil
    ) {
        self.batch = batch
        self.inputChannels = inputChannels
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.outputChannels = outputChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        let span = dilation * (kernelSize - 1) + 1
        self.outputHeight = outputHeight ?? (inputHeight + 2 * padding - span) / stride + 1
        self.outputWidth = outputWidth ?? (inputWidth + 2 * padding - span) / stride + 1
    }

    /// The extent of the dilated kernel, d*(K-1) + 1.
    public var dilatedKernelSize: Int { dilation * (kernelSize - 1) + 1 }
    /// Padding below the last input row implied by the output height (negative: rows left unused).
    public var paddingBottom: Int { (outputHeight - 1) * stride + dilatedKernelSize - inputHeight - padding }
    /// Padding right of the last input column implied by the output width.
    public var paddingRight: Int { (outputWidth - 1) * stride + dilatedKernelSize - inputWidth - padding }
    public var inputChannelsPerGroup: Int { inputChannels / groups }
    public var outputChannelsPerGroup: Int { outputChannels / groups }
    public var inputCount: Int { batch * inputChannels * inputHeight * inputWidth }
    public var outputCount: Int { batch * outputChannels * outputHeight * outputWidth }
    public var weightCount: Int { outputChannels * inputChannelsPerGroup * kernelSize * kernelSize }
    /// Multiply-adds times two, for GFLOP/s figures.
    public var flops: Double {
        2 * Double(batch * outputChannels * outputHeight * outputWidth)
            * Double(inputChannelsPerGroup * kernelSize * kernelSize)
    }
    /// A 1x1, stride-1, unpadded conv: the input planes already are the im2col matrix.
    var isPointwise: Bool {
        kernelSize == 1 && stride == 1 && padding == 0 && outputHeight == inputHeight && outputWidth == inputWidth
    }

    public var description: String {
        "conv \(batch)x\(inputChannels)x\(inputHeight)x\(inputWidth) -> "
            + "\(outputChannels)x\(outputHeight)x\(outputWidth), "
            + "K \(kernelSize) s \(stride) p \(padding) d \(dilation) G \(groups)"
    }
}

/// Which implementation runs a convolution.
public enum ConvolutionBackend: Hashable, Sendable {
    /// oneDNN primitives. With `blockedLayout` they choose their own (blocked) layouts and we
    /// reorder from/to NCHW around each call; without it they work on NCHW directly.
    case oneDNN(blockedLayout: Bool)
    /// im2col + BLAS.sgemm, one GEMM per image and group.
    case im2col
    /// Winograd F(4x4, 3x3) (Kernels/WinogradConvolutionKernels.swift, WinogradWeightGradientKernels.swift)
    /// for the forward, backward-data and backward-weights passes of 3x3 stride-1 convolutions it
    /// supports; GEMMs on NCHW for pointwise (1x1) convolutions (Kernels/PointwiseConvolutionKernels.swift);
    /// oneDNN (blocked) otherwise, and for the bias gradient.
    case winograd

    /// The oneDNN layout setting a backend implies (nil: no oneDNN).
    var oneDNNBlockedLayout: Bool? {
        switch self {
        case .oneDNN(let blocked): return blocked
        case .winograd: return true
        case .im2col: return nil
        }
    }

    /// Whether oneDNN can be used in this process.
    public static var isOneDNNAvailable: Bool {
        #if canImport(CGKNetDNNL)
        return OneDNN.context != nil
        #else
        return false
        #endif
    }

    /// The backend `conv2d` and `convTranspose2d` use, per task (default `.winograd`, measured
    /// fastest: docs/benchmarks.md). Winograd rounds more than direct convolution (errors near
    /// 1e-5 of the output's scale); for bit-closer PyTorch parity run ops under
    /// `ConvolutionBackend.$preferred.withValue(.oneDNN(blockedLayout: true)) { ... }`.
    /// An op's backward pass uses the backend its forward pass saw.
    @TaskLocal public static var preferred: ConvolutionBackend = .winograd

    /// The kernels' default: `preferred`.
    public static var automatic: ConvolutionBackend { preferred }
}

/// Forward convolution: `output (= or +=) conv(input, weight) + bias` (see `ConvolutionGeometry`).
///
/// - Parameters:
///   - output: N x O x Ho x Wo; overwritten, or added to with `accumulate`.
///   - input: N x C x H x W. weight: O x Cg x K x K. bias: O, or nil.
///   - training: pick the primitive for a forward pass whose backward will follow.
///   - backend: oneDNN falls back to im2col for a geometry it has no implementation for.
public func convolutionForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, geometry: ConvolutionGeometry, accumulate: Bool = false, training: Bool = false,
    backend: ConvolutionBackend = .automatic
) {
    if backend == .winograd && winogradSupports(geometry) {
        winogradConvolutionForward(
            output: output, input: input, weight: weight, bias: bias, geometry: geometry, accumulate: accumulate)
        return
    }
    if backend == .winograd && pointwiseSupports(geometry) {
        pointwiseConvolutionForward(
            output: output, input: input, weight: weight, bias: bias, geometry: geometry, accumulate: accumulate)
        return
    }
    if let blocked = backend.oneDNNBlockedLayout {
        #if canImport(CGKNetDNNL)
        if let context = OneDNN.current,
            context.convolutionForward(
                output: output, input: input, weight: weight, bias: bias, geometry: geometry,
                accumulate: accumulate, training: training, blockedLayout: blocked)
        {
            return
        }
        #endif
    }
    im2colConvolutionForward(
        output: output, input: input, weight: weight, bias: bias, geometry: geometry, accumulate: accumulate)
}

/// Backward convolution; accumulates (`+=`) into every non-nil gradient buffer, or overwrites
/// them when `accumulate` is false.
///
/// In the forward pass this was `out[n,o,y,x] = b[o] + sum w[o,c,i,j] * in[n,gCg+c, y*s-p+i*d, x*s-p+j*d]`,
/// so `dIn[n,gCg+c,y*s-p+i*d,x*s-p+j*d] += w[o,c,i,j] * dOut[n,o,y,x]`,
/// `dW[o,c,i,j] += in[n,gCg+c,y*s-p+i*d,x*s-p+j*d] * dOut[n,o,y,x]`, `dB[o] += dOut[n,o,y,x]`.
///
/// - Parameters:
///   - dInput: N x C x H x W or nil. dWeight: O x Cg x K x K or nil. dBias: O or nil.
///   - dOutput: N x O x Ho x Wo. input: needed only for `dWeight`. weight: needed only for `dInput`.
public func convolutionBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
    geometry: ConvolutionGeometry, accumulate: Bool = true, backend: ConvolutionBackend = .automatic
) {
    precondition(dInput == nil || weight != nil, "convolutionBackward: dInput needs the weight")
    precondition(dWeight == nil || input != nil, "convolutionBackward: dWeight needs the input")
    if dInput == nil && dWeight == nil && dBias == nil { return }
    if backend == .winograd && pointwiseSupports(geometry) {
        pointwiseConvolutionBackward(
            dInput: dInput, dWeight: dWeight, dBias: dBias, dOutput: dOutput, input: input, weight: weight,
            geometry: geometry, accumulate: accumulate)
        return
    }
    if backend == .winograd {
        // Winograd takes the passes it supports; oneDNN (blocked) the rest, and the bias gradient.
        let data = dInput != nil && winogradSupportsBackwardData(geometry)
        let weights = dWeight != nil && winogradSupports(geometry)
        if data || weights {
            if data, let dInput, let weight {
                winogradConvolutionBackwardData(
                    dInput: dInput, dOutput: dOutput, weight: weight, geometry: geometry, accumulate: accumulate)
            }
            if weights, let dWeight, let input {
                winogradConvolutionBackwardWeights(
                    dWeight: dWeight, dOutput: dOutput, input: input, geometry: geometry, accumulate: accumulate)
            }
            convolutionBackward(
                dInput: data ? nil : dInput, dWeight: weights ? nil : dWeight, dBias: dBias, dOutput: dOutput,
                input: input,
                weight: weight, geometry: geometry, accumulate: accumulate, backend: .oneDNN(blockedLayout: true))
            return
        }
    }
    if let blocked = backend.oneDNNBlockedLayout {
        #if canImport(CGKNetDNNL)
        if let context = OneDNN.current,
            context.convolutionBackward(
                dInput: dInput, dWeight: dWeight, dBias: dBias, dOutput: dOutput, input: input, weight: weight,
                geometry: geometry, accumulate: accumulate, blockedLayout: blocked)
        {
            return
        }
        #endif
    }
    im2colConvolutionBackward(
        dInput: dInput, dWeight: dWeight, dBias: dBias, dOutput: dOutput, input: input, weight: weight,
        geometry: geometry, accumulate: accumulate)
}

// MARK: - Transposed convolution through the convolution kernels

/// Transposed convolution (PyTorch `conv_transpose2d`) as the adjoint of a convolution:
/// `y = convT(x, w) + b` is the convolution backward-data pass with `dOut := x`, `dIn := y`.
///
/// `geometry` describes that convolution: its *input* is y (N x Co x Hy x Wy, Co = O of the
/// transposed conv) and its *output* is x (N x Ci x Hx x Wx); its weight Ci x Co/G x K x K is
/// exactly PyTorch's ConvTranspose2d weight layout.
///
///     y[n, g*Cog + o, yy*s - p + i*d, xx*s - p + j*d] += x[n, g*Cig + c, yy, xx] * w[g*Cig + c, o, i, j]
///
/// - Parameters: output: y, overwritten. input: x. bias: Co, or nil.
public func transposedConvolutionForward(
    output: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?, geometry: ConvolutionGeometry, backend: ConvolutionBackend = .automatic
) {
    convolutionBackward(
        dInput: output, dWeight: nil, dBias: nil, dOutput: input, input: nil, weight: weight,
        geometry: geometry, accumulate: false, backend: backend)
    if let bias {
        addChannelBias(
            output, bias: bias, batch: geometry.batch, channels: geometry.inputChannels,
            planeSize: geometry.inputHeight * geometry.inputWidth)
    }
}

/// Backward of `transposedConvolutionForward`, accumulating (`+=`; `=` when `accumulate` is false).
/// The forward was y = conv^T(x) + b, so `dx += conv(dy, w)` (a forward convolution), `dw += ` the
/// convolution weight gradient with in := dy, dOut := x, and `db[o] += sum dy[n, o, :, :]`.
public func transposedConvolutionBackward(
    dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?, dBias: UnsafeMutablePointer<Float>?,
    dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>?, weight: UnsafePointer<Float>?,
    geometry: ConvolutionGeometry, accumulate: Bool = true, backend: ConvolutionBackend = .automatic
) {
    if let dInput {
        precondition(weight != nil, "transposedConvolutionBackward: dInput needs the weight")
        convolutionForward(
            output: dInput, input: dOutput, weight: weight!, bias: nil, geometry: geometry, accumulate: accumulate,
            training: true, backend: backend)
    }
    if let dWeight {
        precondition(input != nil, "transposedConvolutionBackward: dWeight needs the input")
        convolutionBackward(
            dInput: nil, dWeight: dWeight, dBias: nil, dOutput: input!, input: dOutput, weight: nil,
            geometry: geometry, accumulate: accumulate, backend: backend)
    }
    if let dBias {
        if !accumulate { dBias.update(repeating: 0, count: geometry.inputChannels) }
        accumulateChannelSums(
            dBias, of: dOutput, batch: geometry.batch, channels: geometry.inputChannels,
            planeSize: geometry.inputHeight * geometry.inputWidth)
    }
}

/// `out[n, c, :] += bias[c]` over N x C planes of `planeSize` elements.
func addChannelBias(
    _ output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, batch: Int, channels: Int, planeSize: Int
) {
    parallelChunks(batch * channels, minimumPerThread: max(1, 16384 / max(1, planeSize))) { planes in
        for plane in planes {
            let value = bias[plane % channels]
            let row = output + plane * planeSize
            for k in 0..<planeSize { row[k] += value }
        }
    }
}

/// `dBias[c] += sum_{n, k} dOut[n, c, k]` (the gradient of `addChannelBias`).
func accumulateChannelSums(
    _ dBias: UnsafeMutablePointer<Float>, of dOutput: UnsafePointer<Float>, batch: Int, channels: Int, planeSize: Int
) {
    parallelChunks(channels, minimumPerThread: max(1, 16384 / max(1, planeSize * batch))) { range in
        for c in range {
            var total: Float = 0
            for n in 0..<batch { total += sumOfElements(dOutput + (n * channels + c) * planeSize, count: planeSize) }
            dBias[c] += total
        }
    }
}

/// The sum of `count` floats with eight independent partial sums (so the loop vectorizes).
@inline(__always)
func sumOfElements(_ values: UnsafePointer<Float>, count: Int) -> Float {
    var partial = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
    var k = 0
    while k + 8 <= count {
        partial.0 += values[k]
        partial.1 += values[k + 1]
        partial.2 += values[k + 2]
        partial.3 += values[k + 3]
        partial.4 += values[k + 4]
        partial.5 += values[k + 5]
        partial.6 += values[k + 6]
        partial.7 += values[k + 7]
        k += 8
    }
    var total =
        ((partial.0 + partial.1) + (partial.2 + partial.3)) + ((partial.4 + partial.5) + (partial.6 + partial.7))
    while k < count {
        total += values[k]
        k += 1
    }
    return total
}

/// Multi-MB float work buffers reused across calls, so that scratch matrices (im2col, Winograd) are
/// not mapped, faulted in and unmapped on every call. Thread-safe: concurrent callers get distinct
/// buffers; at most `kept` idle buffers are retained (the largest).
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()
    private let lock = NSLock()
    private var idle: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private let kept = 6

    /// Runs `body` with a buffer of at least `count` floats (contents undefined).
    func withBuffer<Result>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Result) -> Result {
        let buffer = take(max(1, count))
        defer { give(buffer) }
        return body(buffer.pointer)
    }

    private func take(_ count: Int) -> (pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.lock()
        defer { lock.unlock() }
        let fitting = idle.indices.filter { idle[$0].capacity >= count }
        if let best = fitting.min(by: { idle[$0].capacity < idle[$1].capacity }) { return idle.remove(at: best) }
        return (UnsafeMutablePointer<Float>.allocate(capacity: count), count)
    }

    private func give(_ buffer: (pointer: UnsafeMutablePointer<Float>, capacity: Int)) {
        lock.lock()
        defer { lock.unlock() }
        idle.append(buffer)
        if idle.count > kept, let smallest = idle.indices.min(by: { idle[$0].capacity < idle[$1].capacity }) {
            idle.remove(at: smallest).pointer.deallocate()
        }
    }
}
