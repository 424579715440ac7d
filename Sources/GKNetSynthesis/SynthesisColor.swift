// Colour arithmetic for composite synthesis: a monotone tone curve and the Gaussian blur that
// softens mask edges (sRGB <-> Lab is ImageCodec's ColorSpace). All on PlanarImage, image domain.
import Foundation
import GKNetImageCodec

/// A smooth monotone curve through knots at x = 0, 1/(n-1), ..., 1 (monotone cubic Hermite,
/// Fritsch-Carlson), tabulated for fast lookup.
struct ToneCurve: Sendable {
    let knots: [Float]
    private let table: [Float]
    private static let resolution = 1024

    /// `knots` are made non-decreasing before fitting.
    init(knots raw: [Float]) {
        precondition(raw.count >= 2, "ToneCurve: needs at least 2 knots")
        var knots = raw.map { min(max($0, 0), 1) }
        for i in 1..<knots.count { knots[i] = max(knots[i], knots[i - 1]) }
        self.knots = knots
        let n = knots.count, h = 1 / Float(n - 1)
        let secants = (0..<(n - 1)).map { (knots[$0 + 1] - knots[$0]) / h }
        var tangents = [Float](repeating: 0, count: n)
        tangents[0] = secants[0]
        tangents[n - 1] = secants[n - 2]
        for i in 1..<(n - 1) { tangents[i] = secants[i - 1] * secants[i] <= 0 ? 0 : (secants[i - 1] + secants[i]) / 2 }
        for i in 0..<(n - 1) where secants[i] == 0 {
            tangents[i] = 0
            tangents[i + 1] = 0
        }
        for i in 0..<(n - 1) where secants[i] != 0 {
            // Fritsch-Carlson: keep (alpha, beta) inside the circle of radius 3 for monotonicity
            let alpha = tangents[i] / secants[i], beta = tangents[i + 1] / secants[i]
            let radius = alpha * alpha + beta * beta
            if radius > 9 {
                let tau = 3 / radius.squareRoot()
                tangents[i] = tau * alpha * secants[i]
                tangents[i + 1] = tau * beta * secants[i]
            }
        }
        var table = [Float](repeating: 0, count: Self.resolution + 1)
        for j in 0...Self.resolution {
            let x = Float(j) / Float(Self.resolution)
            let i = min(Int(x / h), n - 2)
            let t = (x - Float(i) * h) / h
            let t2 = t * t, t3 = t2 * t
            let value =
                (2 * t3 - 3 * t2 + 1) * knots[i] + (t3 - 2 * t2 + t) * h * tangents[i]
                + (-2 * t3 + 3 * t2) * knots[i + 1] + (t3 - t2) * h * tangents[i + 1]
            table[j] = min(max(value, 0), 1)
        }
        self.table = table
    }

    /// The curve at `x` (clamped to 0...1), linearly interpolated in the table.
    @inline(__always) func callAsFunction(_ x: Float) -> Float {
        let position = min(max(x, 0), 1) * Float(Self.resolution)
        let i = min(Int(position), Self.resolution - 1)
        let t = position - Float(i)
        return table[i] + t * (table[i + 1] - table[i])
    }
}

extension PlanarImage {
    /// The image thresholded at 0.5: 1 above, else 0.
    func binarized() -> PlanarImage {
        PlanarImage(width: width, height: height, channels: channels, values: values.map { $0 > 0.5 ? 1 : 0 })
    }

    /// Separable Gaussian blur with standard deviation `sigma` (kernel radius ceil(3 sigma)),
    /// borders replicated. Each output sums its taps in kernel order (left to right, then top to
    /// bottom), the same as the plain loops; all-zero rows are skipped (they add exactly zero),
    /// which makes a mask's blur cost what its object's rows cost.
    func gaussianBlurred(sigma: Float) -> PlanarImage {
        guard sigma > 0 else { return self }
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let rows = channels * height, width = self.width, height = self.height
        var horizontal = [Float](repeating: 0, count: values.count)
        var rowIsZero = [Bool](repeating: true, count: rows)
        values.withUnsafeBufferPointer { input in
            horizontal.withUnsafeMutableBufferPointer { output in
                for row in 0..<rows {
                    let line = input.baseAddress! + row * width
                    guard (0..<width).contains(where: { line[$0] != 0 }) else { continue }
                    rowIsZero[row] = false
                    Self.blurRow(line, into: output.baseAddress! + row * width, width: width, kernel: kernel)
                }
            }
        }
        var out = [Float](repeating: 0, count: values.count)
        horizontal.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                for c in 0..<channels {
                    for y in 0..<height {
                        let target = output.baseAddress! + (c * height + y) * width
                        for k in -radius...radius {
                            let sourceRow = c * height + min(max(y + k, 0), height - 1)
                            if rowIsZero[sourceRow] { continue }
                            let source = input.baseAddress! + sourceRow * width
                            let weight = kernel[k + radius]
                            for x in 0..<width { target[x] += weight * source[x] }
                        }
                    }
                }
            }
        }
        return PlanarImage(width: width, height: height, channels: channels, values: out)
    }

    /// One row of the horizontal pass: out[x] = sum over k of kernel[k + r] * line[clamp(x + k)],
    /// accumulated in k order; the interior, where no tap is clamped, runs tap by tap across x.
    private static func blurRow(
        _ line: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, width: Int, kernel: [Float]
    ) {
        let radius = kernel.count / 2
        let interior = radius..<max(radius, width - radius)
        for x in 0..<width where !interior.contains(x) {
            var sum: Float = 0
            for k in -radius...radius { sum += kernel[k + radius] * line[min(max(x + k, 0), width - 1)] }
            out[x] = sum
        }
        guard !interior.isEmpty else { return }
        kernel.withUnsafeBufferPointer { weights in
            for k in -radius...radius {
                let weight = weights[k + radius], shifted = line + k
                for x in interior { out[x] += weight * shifted[x] }
            }
        }
    }
}
