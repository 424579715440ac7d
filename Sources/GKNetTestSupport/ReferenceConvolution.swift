// Naive loop twins of the convolution kernels (the definitions, written out; Double accumulation).
// Tests compare the oneDNN and im2col paths against these on unfriendly shapes.
import GKNetTensorCore

/// Direct-loop reference for `conv2d` and `convTranspose2d`, forward and backward.
public enum ReferenceConvolution {
    /// Hyper-parameters shared by both directions.
    public struct Parameters: Sendable, CustomStringConvertible {
        public var stride = 1, padding = 0, dilation = 1, groups = 1, outputPadding = 0
        public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1, outputPadding: Int = 0) {
            self.stride = stride
            self.padding = padding
            self.dilation = dilation
            self.groups = groups
            self.outputPadding = outputPadding
        }
        public var description: String { "s\(stride) p\(padding) d\(dilation) G\(groups) op\(outputPadding)" }
    }

    /// Visits every (output index, input index, weight index) triple of a convolution:
    /// `out[n, o, y, x] += w[o, c, i, j] * in[n, g*Cg + c, y*s - p + i*d, x*s - p + j*d]`.
    /// `input` is N x C x H x W, `weight` O x Cg x K x K, output N x O x Ho x Wo.
    private static func forEachTerm(
        input: [Int], weight: [Int], output: [Int], _ p: Parameters, _ body: (Int, Int, Int) -> Void
    ) {
        let (n, c, h, w) = (input[0], input[1], input[2], input[3])
        let (o, cg, k) = (weight[0], weight[1], weight[2])
        let (ho, wo) = (output[2], output[3])
        let og = o / p.groups
        for b in 0..<n {
            for oc in 0..<o {
                let group = oc / og
                for y in 0..<ho {
                    for x in 0..<wo {
                        let out = ((b * o + oc) * ho + y) * wo + x
                        for ic in 0..<cg {
                            let channel = group * cg + ic
                            for i in 0..<k {
                                let iy = y * p.stride - p.padding + i * p.dilation
                                if iy < 0 || iy >= h { continue }
                                for j in 0..<k {
                                    let ix = x * p.stride - p.padding + j * p.dilation
                                    if ix < 0 || ix >= w { continue }
                                    body(out, ((b * c + channel) * h + iy) * w + ix, ((oc * cg + ic) * k + i) * k + j)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// PyTorch conv2d: x N x C x H x W, weight O x C/G x K x K, bias O.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ p: Parameters) -> Tensor {
        let k = weight.shape[2]
        let ho = (x.shape[2] + 2 * p.padding - p.dilation * (k - 1) - 1) / p.stride + 1
        let wo = (x.shape[3] + 2 * p.padding - p.dilation * (k - 1) - 1) / p.stride + 1
        let shape = [x.shape[0], weight.shape[0], ho, wo]
        var out = [Double](repeating: 0, count: shape.elementCount)
        forEachTerm(input: x.shape, weight: weight.shape, output: shape, p) { o, i, w in
            out[o] += Double(weight.data[w]) * Double(x.data[i])
        }
        addBias(&out, bias, shape: shape)
        return Tensor(shape: shape, data: out.map { Float($0) })
    }

    /// Gradients of `conv2d` for the output gradient `dOut`: (dx, dWeight, dBias).
    public static func conv2dBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, _ p: Parameters) -> (
        Tensor, Tensor, Tensor
    ) {
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: weight.count)
        forEachTerm(input: x.shape, weight: weight.shape, output: dOut.shape, p) { o, i, w in
            dx[i] += Double(weight.data[w]) * Double(dOut.data[o])
            dw[w] += Double(x.data[i]) * Double(dOut.data[o])
        }
        return (
            Tensor(shape: x.shape, data: dx.map { Float($0) }), Tensor(shape: weight.shape, data: dw.map { Float($0) }),
            channelSums(dOut)
        )
    }

    /// PyTorch conv_transpose2d: x N x C x H x W, weight C x O/G x K x K, bias O, written
    /// directly as a scatter:
    /// `out[n, g*Og + o, y*s - p + i*d, x*s - p + j*d] += x[n, g*Cg + c, y, x] * w[g*Cg + c, o, i, j]`.
    public static func convTranspose2d(_ x: Tensor, weight: Tensor, bias: Tensor?, _ p: Parameters) -> Tensor {
        let shape = transposedShape(x, weight, p)
        var out = [Double](repeating: 0, count: shape.elementCount)
        forEachTransposedTerm(x, weight, shape, p) { o, i, w in
            out[o] += Double(x.data[i]) * Double(weight.data[w])
        }
        addBias(&out, bias, shape: shape)
        return Tensor(shape: shape, data: out.map { Float($0) })
    }

    /// Gradients of `convTranspose2d` for `dOut`: (dx, dWeight, dBias).
    public static func convTranspose2dBackward(_ dOut: Tensor, x: Tensor, weight: Tensor, _ p: Parameters) -> (
        Tensor, Tensor, Tensor
    ) {
        var dx = [Double](repeating: 0, count: x.count)
        var dw = [Double](repeating: 0, count: weight.count)
        forEachTransposedTerm(x, weight, dOut.shape, p) { o, i, w in
            dx[i] += Double(weight.data[w]) * Double(dOut.data[o])
            dw[w] += Double(x.data[i]) * Double(dOut.data[o])
        }
        return (
            Tensor(shape: x.shape, data: dx.map { Float($0) }), Tensor(shape: weight.shape, data: dw.map { Float($0) }),
            channelSums(dOut)
        )
    }

    /// N x O x Ho x Wo with Ho = (H - 1)s - 2p + d(K - 1) + outputPadding + 1.
    public static func transposedShape(_ x: Tensor, _ weight: Tensor, _ p: Parameters) -> [Int] {
        let k = weight.shape[2]
        func size(_ s: Int) -> Int { (s - 1) * p.stride - 2 * p.padding + p.dilation * (k - 1) + p.outputPadding + 1 }
        return [x.shape[0], weight.shape[1] * p.groups, size(x.shape[2]), size(x.shape[3])]
    }

    private static func forEachTransposedTerm(
        _ x: Tensor, _ weight: Tensor, _ shape: [Int], _ p: Parameters, _ body: (Int, Int, Int) -> Void
    ) {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (og, k) = (weight.shape[1], weight.shape[2])
        let (o, ho, wo) = (shape[1], shape[2], shape[3])
        let cg = c / p.groups
        for b in 0..<n {
            for ic in 0..<c {
                let group = ic / cg
                for y in 0..<h {
                    for xx in 0..<w {
                        let input = ((b * c + ic) * h + y) * w + xx
                        for oc in 0..<og {
                            for i in 0..<k {
                                let oy = y * p.stride - p.padding + i * p.dilation
                                if oy < 0 || oy >= ho { continue }
                                for j in 0..<k {
                                    let ox = xx * p.stride - p.padding + j * p.dilation
                                    if ox < 0 || ox >= wo { continue }
                                    body(
                                        ((b * o + group * og + oc) * ho + oy) * wo + ox, input,
                                        ((ic * og + oc) * k + i) * k + j)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static func addBias(_ out: inout [Double], _ bias: Tensor?, shape: [Int]) {
        guard let bias else { return }
        let plane = shape[2] * shape[3]
        for index in out.indices { out[index] += Double(bias.data[(index / plane) % shape[1]]) }
    }

    private static func channelSums(_ dOut: Tensor) -> Tensor {
        let (channels, plane) = (dOut.shape[1], dOut.shape[2] * dOut.shape[3])
        var sums = [Double](repeating: 0, count: channels)
        for index in 0..<dOut.count { sums[(index / plane) % channels] += Double(dOut.data[index]) }
        return Tensor(shape: [channels], data: sums.map { Float($0) })
    }
}
