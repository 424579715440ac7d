// Image-domain resizing of float planes (not an autograd op: the differentiable resize is
// TensorCore's `resizeBilinear`). Separable: one horizontal pass, then one vertical pass, each a
// weighted sum over a precomputed table of taps per output pixel.
import Foundation
import GKNetTensorCore

/// How `PlanarImage.resized` computes each output pixel.
public enum ResizeFilter: String, Sendable, Codable, CaseIterable {
    /// Exact pixel-area average: output pixel i covers input [i*s, (i+1)*s) with s = in/out and
    /// averages the input pixels weighted by their overlap (OpenCV INTER_AREA when downscaling;
    /// PyTorch `mode='area'` for integer ratios). The filter of choice for downscaling.
    case area
    /// PyTorch `interpolate(mode='bilinear', align_corners=False, antialias=False)`: two taps
    /// at source coordinate (i + 0.5) * in/out - 0.5 clamped at 0. Aliases when downscaling.
    case bilinear
    /// Pillow `BICUBIC` (Keys cubic, a = -0.5), widened by the scale when downscaling (antialiased).
    case bicubic
    /// Pillow `LANCZOS` (windowed sinc, a = 3), widened by the scale when downscaling (antialiased).
    case lanczos3
    /// Per axis: `area` when the axis shrinks, `bilinear` when it grows or keeps its size.
    case automatic
}

/// Interpolation taps along one axis: output pixel i reads `count[i]` inputs starting at
/// `start[i]` with weights `weights[i * taps ..< i * taps + count[i]]`.
struct ResampleTable {
    let taps: Int
    var start: [Int]
    var count: [Int]
    var weights: [Float]

    init(input: Int, output: Int, filter: ResizeFilter) {
        switch filter {
        case .automatic:
            self.init(input: input, output: output, filter: output < input ? .area : .bilinear)
        case .area:
            self.init(areaFrom: input, to: output)
        case .bilinear:
            self.init(bilinearFrom: input, to: output)
        case .bicubic:
            self.init(convolutionFrom: input, to: output, support: 2) { x in
                // Keys cubic with a = -0.5 (Pillow's bicubic_filter)
                let a = -0.5, t = abs(x)
                if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
                if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
                return 0
            }
        case .lanczos3:
            self.init(convolutionFrom: input, to: output, support: 3) { x in
                // sinc(x) * sinc(x / 3) on -3 < x < 3 (Pillow's lanczos_filter)
                func sinc(_ v: Double) -> Double { v == 0 ? 1 : sin(Double.pi * v) / (Double.pi * v) }
                return -3 < x && x < 3 ? sinc(x) * sinc(x / 3) : 0
            }
        }
    }

    private init(taps: Int, output: Int) {
        self.taps = taps
        start = [Int](repeating: 0, count: output)
        count = [Int](repeating: 0, count: output)
        weights = [Float](repeating: 0, count: output * taps)
    }

    /// Exact overlap of [i*s, (i+1)*s) with each input pixel [j, j+1), divided by s.
    private init(areaFrom input: Int, to output: Int) {
        let scale = Double(input) / Double(output)
        self.init(taps: Int(scale.rounded(.up)) + 1, output: output)
        for i in 0..<output {
            let low = Double(i) * scale, high = min(Double(i + 1) * scale, Double(input))
            let first = Int(low.rounded(.down))
            let last = min(Int(high.rounded(.up)), input)
            start[i] = first
            count[i] = last - first
            for j in first..<last {
                let overlap = min(high, Double(j + 1)) - max(low, Double(j))
                weights[i * taps + j - first] = Float(overlap / (high - low))
            }
        }
    }

    /// PyTorch's bilinear source index, in float as PyTorch computes it.
    private init(bilinearFrom input: Int, to output: Int) {
        self.init(taps: 2, output: output)
        let scale = Float(input) / Float(output)
        for i in 0..<output {
            let source = max(scale * (Float(i) + 0.5) - 0.5, 0)
            let index = min(Int(source), input - 1)
            let lambda = source - Float(index)
            start[i] = index
            if index < input - 1 {
                count[i] = 2
                weights[i * taps] = 1 - lambda
                weights[i * taps + 1] = lambda
            } else {
                count[i] = 1
                weights[i * taps] = 1
            }
        }
    }

    /// Pillow's convolution resampling (`precompute_coeffs`): the kernel is stretched by the scale
    /// when downscaling, centred on (i + 0.5) * s, and normalised to sum 1.
    private init(convolutionFrom input: Int, to output: Int, support baseSupport: Double, kernel: (Double) -> Double) {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = baseSupport * filterScale
        self.init(taps: Int(support.rounded(.up)) * 2 + 1, output: output)
        var row = [Double](repeating: 0, count: taps)
        for i in 0..<output {
            let center = (Double(i) + 0.5) * scale
            let first = max(Int(center - support + 0.5), 0)
            let last = min(Int(center + support + 0.5), input)
            var total = 0.0
            for j in first..<last {
                let w = kernel((Double(j) - center + 0.5) / filterScale)
                row[j - first] = w
                total += w
            }
            start[i] = first
            count[i] = last - first
            for j in 0..<(last - first) {
                weights[i * taps + j] = Float(total == 0 ? row[j] : row[j] / total)
            }
        }
    }
}

extension PlanarImage {
    /// The image resampled to `width` x `height` with `filter` (aspect ratio not preserved).
    public func resized(width outWidth: Int, height outHeight: Int, filter: ResizeFilter = .automatic) -> PlanarImage {
        precondition(outWidth > 0 && outHeight > 0, "resized: target size \(outWidth)x\(outHeight) must be positive")
        precondition(width > 0 && height > 0, "resized: source image is \(width)x\(height)")
        var image = self
        if outWidth != width { image = image.resampledHorizontally(to: outWidth, filter: filter) }
        if outHeight != height { image = image.resampledVertically(to: outHeight, filter: filter) }
        return image
    }

    /// out[c, y, i] = sum_k w[i, k] * in[c, y, start[i] + k].
    func resampledHorizontally(to outWidth: Int, filter: ResizeFilter) -> PlanarImage {
        let table = ResampleTable(input: width, output: outWidth, filter: filter)
        var out = [Float](repeating: 0, count: channels * height * outWidth)
        let inWidth = width, stride = table.taps
        values.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                table.weights.withUnsafeBufferPointer { weights in
                    table.start.withUnsafeBufferPointer { starts in
                        table.count.withUnsafeBufferPointer { counts in
                            parallelChunks(channels * height, minimumPerThread: max(1, 16_384 / max(outWidth, 1))) {
                                rows in
                                for row in rows {
                                    let input = row * inWidth, output = row * outWidth
                                    for i in 0..<outWidth {
                                        let first = input + starts[i], base = i * stride
                                        var sum: Float = 0
                                        for k in 0..<counts[i] { sum += weights[base + k] * source[first + k] }
                                        target[output + i] = sum
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return PlanarImage(width: outWidth, height: height, channels: channels, values: out)
    }

    /// out[c, i, x] = sum_k w[i, k] * in[c, start[i] + k, x] (rows accumulated whole, so the inner
    /// loop runs along x and vectorizes).
    func resampledVertically(to outHeight: Int, filter: ResizeFilter) -> PlanarImage {
        let table = ResampleTable(input: height, output: outHeight, filter: filter)
        var out = [Float](repeating: 0, count: channels * outHeight * width)
        let w = width, inHeight = height, stride = table.taps
        values.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                table.weights.withUnsafeBufferPointer { weights in
                    table.start.withUnsafeBufferPointer { starts in
                        table.count.withUnsafeBufferPointer { counts in
                            parallelChunks(channels * outHeight, minimumPerThread: max(1, 16_384 / max(w, 1))) { rows in
                                for row in rows {
                                    let c = row / outHeight, i = row % outHeight
                                    let output = row * w
                                    for k in 0..<counts[i] {
                                        let weight = weights[i * stride + k]
                                        let input = (c * inHeight + starts[i] + k) * w
                                        for x in 0..<w { target[output + x] += weight * source[input + x] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return PlanarImage(width: width, height: outHeight, channels: channels, values: out)
    }
}
