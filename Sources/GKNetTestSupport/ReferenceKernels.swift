// Naive reference loops for the fast kernels (llm.c's `matmul_forward_naive`): written straight from
// the formulas, indices checked, sums in Double. Slow on purpose; for tests on small, unfriendly shapes.
import Foundation
import GKNetTensorCore

public enum ReferenceKernels {
    // MARK: - Matrix multiplication

    /// `C[b] = A[b] · B[b]` (or `A[b] · B` for a rank-2 B): a [..., M, K], b [..., K, N].
    public static func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (m, k, n) = (a.shape[a.rank - 2], a.shape[a.rank - 1], b.shape[b.rank - 1])
        let batch = a.shape.dropLast(2).reduce(1, *)
        let shared = b.rank == 2
        var out = [Float](repeating: 0, count: batch * m * n)
        for item in 0..<batch {
            let bBase = shared ? 0 : item * k * n
            for i in 0..<m {
                for j in 0..<n {
                    var total = 0.0
                    for p in 0..<k {
                        total += Double(a.data[item * m * k + i * k + p]) * Double(b.data[bBase + p * n + j])
                    }
                    out[item * m * n + i * n + j] = Float(total)
                }
            }
        }
        return Tensor(shape: Array(a.shape.dropLast(2)) + [m, n], data: out)
    }

    /// Gradients of `sum(matmul(a, b) * dOut)`: dA = dOut · Bᵀ, dB = Aᵀ · dOut (summed over the batch if shared).
    public static func matmulGradients(_ a: Tensor, _ b: Tensor, dOutput: Tensor) -> (dA: Tensor, dB: Tensor) {
        let (m, k, n) = (a.shape[a.rank - 2], a.shape[a.rank - 1], b.shape[b.rank - 1])
        let batch = a.shape.dropLast(2).reduce(1, *)
        let shared = b.rank == 2
        var dA = [Double](repeating: 0, count: a.count)
        var dB = [Double](repeating: 0, count: b.count)
        for item in 0..<batch {
            let bBase = shared ? 0 : item * k * n
            for i in 0..<m {
                for j in 0..<n {
                    let g = Double(dOutput.data[item * m * n + i * n + j])
                    for p in 0..<k {
                        dA[item * m * k + i * k + p] += g * Double(b.data[bBase + p * n + j])
                        dB[bBase + p * n + j] += g * Double(a.data[item * m * k + i * k + p])
                    }
                }
            }
        }
        return (Tensor(shape: a.shape, data: dA.map(Float.init)), Tensor(shape: b.shape, data: dB.map(Float.init)))
    }

    // MARK: - Per-pixel dynamic kernels

    /// `out[n,c,y,x] = Σ_{i,j} K[n, g(c)·k² + i·k + j, y, x] · x[n, c, y+(i-k/2)·dil, x+(j-k/2)·dil]`, zero padded.
    public static func pixelKernels(_ x: Tensor, kernels: Tensor, kernelSize k: Int, dilation: Int) -> Tensor {
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let groups = kernels.shape[1] / (k * k)
        var out = [Float](repeating: 0, count: x.count)
        for n in 0..<batch {
            for c in 0..<channels {
                let group = c / (channels / groups)
                for y in 0..<h {
                    for xx in 0..<w {
                        var total = 0.0
                        for i in 0..<k {
                            for j in 0..<k {
                                let sy = y + (i - k / 2) * dilation
                                let sx = xx + (j - k / 2) * dilation
                                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                                let weight = kernels.data[
                                    ((n * kernels.shape[1] + group * k * k + i * k + j) * h + y) * w + xx]
                                total += Double(weight) * Double(x.data[((n * channels + c) * h + sy) * w + sx])
                            }
                        }
                        out[((n * channels + c) * h + y) * w + xx] = Float(total)
                    }
                }
            }
        }
        return Tensor(shape: x.shape, data: out)
    }

    /// Gradients of `sum(pixelKernels(x, kernels) * dOut)` by scattering every term of the forward sum.
    public static func pixelKernelsGradients(
        _ x: Tensor, kernels: Tensor, kernelSize k: Int, dilation: Int, dOutput: Tensor
    ) -> (dInput: Tensor, dKernels: Tensor) {
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let groups = kernels.shape[1] / (k * k)
        var dx = [Double](repeating: 0, count: x.count)
        var dk = [Double](repeating: 0, count: kernels.count)
        for n in 0..<batch {
            for c in 0..<channels {
                let group = c / (channels / groups)
                for y in 0..<h {
                    for xx in 0..<w {
                        let g = Double(dOutput.data[((n * channels + c) * h + y) * w + xx])
                        for i in 0..<k {
                            for j in 0..<k {
                                let sy = y + (i - k / 2) * dilation
                                let sx = xx + (j - k / 2) * dilation
                                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                                let kIndex = ((n * kernels.shape[1] + group * k * k + i * k + j) * h + y) * w + xx
                                let xIndex = ((n * channels + c) * h + sy) * w + sx
                                dx[xIndex] += g * Double(kernels.data[kIndex])
                                dk[kIndex] += g * Double(x.data[xIndex])
                            }
                        }
                    }
                }
            }
        }
        return (
            Tensor(shape: x.shape, data: dx.map(Float.init)), Tensor(shape: kernels.shape, data: dk.map(Float.init))
        )
    }

    // MARK: - Pooling (forward)

    /// Average (count_include_pad) or max pooling of N x C x H x W by the PyTorch definitions.
    public static func pool2d(_ x: Tensor, kernelSize: Int, stride: Int, padding: Int, max useMax: Bool) -> Tensor {
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let oh = (h + 2 * padding - kernelSize) / stride + 1
        let ow = (w + 2 * padding - kernelSize) / stride + 1
        var out = [Float]()
        for plane in 0..<batch * channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var total = 0.0
                    var best = -Float.infinity
                    for i in 0..<kernelSize {
                        for j in 0..<kernelSize {
                            let (iy, ix) = (oy * stride - padding + i, ox * stride - padding + j)
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            let value = x.data[(plane * h + iy) * w + ix]
                            total += Double(value)
                            best = Swift.max(best, value)
                        }
                    }
                    out.append(useMax ? best : Float(total / Double(kernelSize * kernelSize)))
                }
            }
        }
        return Tensor(shape: [batch, channels, oh, ow], data: out)
    }

    /// Adaptive average pooling with bins `floor(i·H/OH) ..< ceil((i+1)·H/OH)` (computed in Double).
    public static func adaptiveAvgPool2d(_ x: Tensor, outputHeight oh: Int, outputWidth ow: Int) -> Tensor {
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func bin(_ i: Int, _ input: Int, _ output: Int) -> Range<Int> {
            Int(
                (Double(i * input) / Double(output)).rounded(.down))..<Int(
                    (Double((i + 1) * input) / Double(output)).rounded(.up))
        }
        var out = [Float]()
        for plane in 0..<batch * channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var total = 0.0
                    for iy in bin(oy, h, oh) {
                        for ix in bin(ox, w, ow) { total += Double(x.data[(plane * h + iy) * w + ix]) }
                    }
                    out.append(Float(total / Double(bin(oy, h, oh).count * bin(ox, w, ow).count)))
                }
            }
        }
        return Tensor(shape: [batch, channels, oh, ow], data: out)
    }

    // MARK: - Resizing (forward)

    /// PyTorch bilinear (`cubic: false`) or bicubic (`cubic: true`) interpolation with align_corners=False,
    /// evaluated pixel by pixel from the 1-D kernel weights.
    public static func resize(_ x: Tensor, height oh: Int, width ow: Int, cubic: Bool) -> Tensor {
        let (batch, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func weights(_ o: Int, _ input: Int, _ output: Int) -> [(Int, Double)] {
            var source = Double(Float(input) / Float(output) * (Float(o) + 0.5) - 0.5)
            if !cubic {
                source = Swift.max(source, 0)
                let i0 = Int(source.rounded(.down))
                let t = source - Double(i0)
                return [(i0, 1 - t), (Swift.min(i0 + 1, input - 1), t)]
            }
            let i0 = Int(source.rounded(.down))
            let a = -0.75
            func keys(_ d: Double) -> Double {
                let s = abs(d)
                if s <= 1 { return (a + 2) * s * s * s - (a + 3) * s * s + 1 }
                if s < 2 { return a * s * s * s - 5 * a * s * s + 8 * a * s - 4 * a }
                return 0
            }
            return (-1...2).map { offset in
                (Swift.min(Swift.max(i0 + offset, 0), input - 1), keys(source - Double(i0 + offset)))
            }
        }
        var out = [Float]()
        for plane in 0..<batch * channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var total = 0.0
                    for (iy, wy) in weights(oy, h, oh) {
                        for (ix, wx) in weights(ox, w, ow) {
                            total += wy * wx * Double(x.data[(plane * h + iy) * w + ix])
                        }
                    }
                    out.append(Float(total))
                }
            }
        }
        return Tensor(shape: [batch, channels, oh, ow], data: out)
    }
}

// MARK: - Fixture cases

/// One case of a fixture file whose metadata "cases" is a JSON list of `{"name": ..., parameters...}`
/// (the convention of Scripts/fixtures/ops_spatial.py): tensors are stored as `<name>/<tensor>`.
public struct FixtureCase: CustomStringConvertible {
    public let name: String
    let parameters: [String: Any]

    public var description: String { name }

    /// An integer parameter (a missing one is a test setup error).
    public func int(_ key: String) -> Int {
        guard let value = parameters[key] as? Int else { fatalError("fixture case \(name) has no integer \"\(key)\"") }
        return value
    }

    /// A string parameter.
    public func string(_ key: String) -> String {
        guard let value = parameters[key] as? String else {
            fatalError("fixture case \(name) has no string \"\(key)\"")
        }
        return value
    }
}

extension SafeTensorsFile {
    /// The cases listed in the metadata key "cases".
    public func cases() throws -> [FixtureCase] {
        guard let text = metadata["cases"], let data = text.data(using: .utf8),
            let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { throw SafeTensorsError("fixture has no JSON \"cases\" list in its metadata") }
        return list.map { FixtureCase(name: $0["name"] as? String ?? "?", parameters: $0) }
    }

    /// The tensor `<case>/<name>`.
    public func tensor(_ name: String, of fixtureCase: FixtureCase) throws -> Tensor {
        try tensor("\(fixtureCase.name)/\(name)")
    }
}
