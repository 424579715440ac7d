// Carrying the network's 256x256 colour change to the composite's full resolution without losing
// the composite's detail. The network's output pixels are never upsampled themselves (except by
// the `naiveUpsampling` baseline kept for comparison): instead a smooth field of local affine
// colour transforms is fitted at low resolution, from composite to prediction, and applied to the
// full-resolution composite.
import Foundation
import ImageCodec
import TensorCore

/// How the low-resolution prediction becomes a full-resolution result.
public enum FullResolutionMethod: String, Codable, Sendable, CaseIterable {
    /// Fitted local affine colour transforms on a grid, interpolated per pixel (the default).
    case localAffine = "local-affine"
    /// Upsample (prediction - composite) bilinearly and add it to the full composite.
    case upsampledResidual = "upsampled-residual"
    /// Upsample the prediction itself (baseline only: loses all detail above 256 px).
    case naiveUpsampling = "naive-upsampling"
}

/// Settings of the local affine fit.
public struct LocalAffineSettings: Codable, Sendable, Equatable {
    /// Cells per side of the grid laid over the low-resolution image.
    public var gridSize = 8
    /// Each cell's fit uses pixels within this many cell widths of its centre (overlap smooths).
    public var windowRadiusInCells: Float = 1.0
    /// Ridge weight pulling each local transform toward the global one (in units of pixel weight).
    public var regularization: Float = 4
    /// Ridge weight pulling the global transform toward the identity.
    public var globalRegularization: Float = 1e-2

    public init() {}
}

/// A 3x4 colour transform: out_c = sum_k A[c][k] * in_k + A[c][3].
public typealias AffineColorTransform = [Float]  // 12 values, row-major 3 x 4

/// Fits the field of local affine colour transforms mapping `composite` to `prediction`
/// (both 3 x h x w in 0...1), weighted by `mask` (h x w).
/// - Returns: gridSize x gridSize transforms (row-major cells), each 12 floats.
public func fitLocalAffineTransforms(
    composite: PlanarImage, prediction: PlanarImage, mask: PlanarImage, settings: LocalAffineSettings = LocalAffineSettings()
) -> [AffineColorTransform] {
    precondition(composite.channels == 3 && prediction.channels == 3 && mask.channels == 1, "fitLocalAffineTransforms: need 3-channel images and a 1-channel mask")
    precondition(composite.height == prediction.height && composite.width == prediction.width && mask.height == composite.height && mask.width == composite.width,
                 "fitLocalAffineTransforms: composite \(composite.height)x\(composite.width), prediction \(prediction.height)x\(prediction.width), mask \(mask.height)x\(mask.width) differ")
    let (h, w) = (composite.height, composite.width)
    let identity: [Double] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    // Global fit over the whole foreground, ridge toward identity.
    var globalStatistics = AffineStatistics()
    for y in 0..<h {
        for x in 0..<w {
            let weight = Double(mask[0, y, x]) + 1e-4
            globalStatistics.add(composite: composite, prediction: prediction, y: y, x: x, weight: weight)
        }
    }
    let global = globalStatistics.solve(prior: identity, priorWeight: Double(settings.globalRegularization) * max(1, globalStatistics.totalWeight * 1e-3))

    let grid = settings.gridSize
    let cellHeight = Double(h) / Double(grid)
    let cellWidth = Double(w) / Double(grid)
    var transforms = [AffineColorTransform](repeating: [], count: grid * grid)
    for cellY in 0..<grid {
        for cellX in 0..<grid {
            let centerY = (Double(cellY) + 0.5) * cellHeight
            let centerX = (Double(cellX) + 0.5) * cellWidth
            let radiusY = Double(settings.windowRadiusInCells + 0.5) * cellHeight
            let radiusX = Double(settings.windowRadiusInCells + 0.5) * cellWidth
            let y0 = max(0, Int((centerY - radiusY).rounded(.down)))
            let y1 = min(h, Int((centerY + radiusY).rounded(.up)))
            let x0 = max(0, Int((centerX - radiusX).rounded(.down)))
            let x1 = min(w, Int((centerX + radiusX).rounded(.up)))
            var statistics = AffineStatistics()
            for y in y0..<y1 {
                // Tent weighting across the window keeps neighbouring fits consistent.
                let wy = max(0, 1 - abs(Double(y) + 0.5 - centerY) / radiusY)
                for x in x0..<x1 {
                    let wx = max(0, 1 - abs(Double(x) + 0.5 - centerX) / radiusX)
                    let weight = Double(mask[0, y, x]) * wy * wx
                    if weight > 0 { statistics.add(composite: composite, prediction: prediction, y: y, x: x, weight: weight) }
                }
            }
            let solved = statistics.solve(prior: global, priorWeight: Double(settings.regularization))
            transforms[cellY * grid + cellX] = solved.map { Float($0) }
        }
    }
    return transforms
}

/// Applies a field of local affine transforms to a full-resolution composite, interpolating the
/// coefficients bilinearly between cell centres, then blends with the mask:
/// result = mask * transformed + (1 - mask) * composite (background unchanged).
public func applyLocalAffineTransforms(
    _ transforms: [AffineColorTransform], gridSize: Int, composite: PlanarImage, mask: PlanarImage
) -> PlanarImage {
    precondition(transforms.count == gridSize * gridSize, "applyLocalAffineTransforms: \(transforms.count) transforms for a \(gridSize)x\(gridSize) grid")
    precondition(mask.height == composite.height && mask.width == composite.width, "applyLocalAffineTransforms: composite \(composite.height)x\(composite.width) and mask \(mask.height)x\(mask.width) differ")
    let (h, w) = (composite.height, composite.width)
    var result = composite
    let plane = h * w
    // Per-column interpolation positions are shared by all rows.
    func position(_ index: Int, size: Int) -> (Int, Int, Float) {
        let t = (Float(index) + 0.5) / Float(size) * Float(gridSize) - 0.5
        let clamped = min(max(t, 0), Float(gridSize - 1))
        let lower = min(Int(clamped), gridSize - 1)
        let upper = min(lower + 1, gridSize - 1)
        return (lower, upper, clamped - Float(lower))
    }
    let columns = (0..<w).map { position($0, size: w) }
    composite.values.withUnsafeBufferPointer { source in
        mask.values.withUnsafeBufferPointer { alpha in
            result.values.withUnsafeMutableBufferPointer { destination in
                let out = destination.baseAddress!
                parallelChunks(h, minimumPerThread: 16) { rows in for y in rows {
                    let (rowLower, rowUpper, fy) = position(y, size: h)
                    var coefficients = [Float](repeating: 0, count: 12)
                    for x in 0..<w {
                        let i = y * w + x
                        let m = alpha[i]
                        if m <= 0 { continue }
                        let (colLower, colUpper, fx) = columns[x]
                        let a = transforms[rowLower * gridSize + colLower], b = transforms[rowLower * gridSize + colUpper]
                        let c = transforms[rowUpper * gridSize + colLower], d = transforms[rowUpper * gridSize + colUpper]
                        for k in 0..<12 {
                            let top = a[k] + (b[k] - a[k]) * fx
                            let bottom = c[k] + (d[k] - c[k]) * fx
                            coefficients[k] = top + (bottom - top) * fy
                        }
                        let r = source[i], g = source[plane + i], bl = source[2 * plane + i]
                        for channel in 0..<3 {
                            let row = channel * 4
                            var value = coefficients[row] * r + coefficients[row + 1] * g + coefficients[row + 2] * bl + coefficients[row + 3]
                            value = min(max(value, 0), 1)
                            let original = source[channel * plane + i]
                            out[channel * plane + i] = m * value + (1 - m) * original
                        }
                    }
                } }
            }
        }
    }
    return result
}

/// Weighted least-squares sufficient statistics for a 3x4 affine colour fit.
struct AffineStatistics {
    /// sum w * [c;1][c;1]^T (4x4) and sum w * [c;1] * p^T (4x3).
    var gram = [Double](repeating: 0, count: 16)
    var cross = [Double](repeating: 0, count: 12)
    var totalWeight = 0.0

    mutating func add(composite: PlanarImage, prediction: PlanarImage, y: Int, x: Int, weight: Double) {
        let input = [Double(composite[0, y, x]), Double(composite[1, y, x]), Double(composite[2, y, x]), 1]
        for i in 0..<4 {
            for j in 0..<4 { gram[i * 4 + j] += weight * input[i] * input[j] }
            for c in 0..<3 { cross[i * 3 + c] += weight * input[i] * Double(prediction[c, y, x]) }
        }
        totalWeight += weight
    }

    /// Solves min sum w ||A [c;1] - p||^2 + priorWeight ||A - prior||^2 for the 3x4 matrix A.
    func solve(prior: [Double], priorWeight: Double) -> [Double] {
        var matrix = gram
        for i in 0..<4 { matrix[i * 4 + i] += priorWeight }
        var result = [Double](repeating: 0, count: 12)
        for c in 0..<3 {
            var rhs = (0..<4).map { cross[$0 * 3 + c] + priorWeight * prior[c * 4 + $0] }
            var a = matrix
            // Gaussian elimination with partial pivoting on the 4x4 system (SPD after the ridge).
            for col in 0..<4 {
                var pivot = col
                for row in (col + 1)..<4 where abs(a[row * 4 + col]) > abs(a[pivot * 4 + col]) { pivot = row }
                if pivot != col {
                    for k in 0..<4 { a.swapAt(col * 4 + k, pivot * 4 + k) }
                    rhs.swapAt(col, pivot)
                }
                let diagonal = a[col * 4 + col]
                if abs(diagonal) < 1e-12 { continue }
                for row in (col + 1)..<4 {
                    let factor = a[row * 4 + col] / diagonal
                    for k in col..<4 { a[row * 4 + k] -= factor * a[col * 4 + k] }
                    rhs[row] -= factor * rhs[col]
                }
            }
            var solution = [Double](repeating: 0, count: 4)
            for row in stride(from: 3, through: 0, by: -1) {
                var value = rhs[row]
                for k in (row + 1)..<4 { value -= a[row * 4 + k] * solution[k] }
                let diagonal = a[row * 4 + row]
                solution[row] = abs(diagonal) < 1e-12 ? prior[c * 4 + row] : value / diagonal
            }
            for k in 0..<4 { result[c * 4 + k] = solution[k] }
        }
        return result
    }
}

/// Carries a low-resolution prediction to the full-resolution composite.
///
/// - Parameters:
///   - composite, prediction: 3 x h x w low-resolution network input and output (0...1).
///   - mask: 1 x h x w low-resolution mask.
///   - fullComposite: 3 x H x W, fullMask: 1 x H x W (0...1, soft allowed).
/// - Returns: 3 x H x W; background pixels (mask 0) equal `fullComposite` exactly.
public func carryToFullResolution(
    method: FullResolutionMethod, composite: PlanarImage, prediction: PlanarImage, mask: PlanarImage,
    fullComposite: PlanarImage, fullMask: PlanarImage, settings: LocalAffineSettings = LocalAffineSettings()
) -> PlanarImage {
    switch method {
    case .localAffine:
        let transforms = fitLocalAffineTransforms(composite: composite, prediction: prediction, mask: mask, settings: settings)
        return applyLocalAffineTransforms(transforms, gridSize: settings.gridSize, composite: fullComposite, mask: fullMask)
    case .upsampledResidual, .naiveUpsampling:
        let source: PlanarImage
        if method == .naiveUpsampling {
            source = prediction
        } else {
            var residual = prediction
            for i in residual.values.indices { residual.values[i] -= composite.values[i] }
            source = residual
        }
        let upsampled = source.resized(width: fullComposite.width, height: fullComposite.height, filter: .bilinear).values
        var result = fullComposite
        let plane = fullComposite.height * fullComposite.width
        for channel in 0..<3 {
            for i in 0..<plane {
                let index = channel * plane + i
                let original = fullComposite.values[index]
                let changed = method == .naiveUpsampling ? upsampled[index] : original + upsampled[index]
                let m = fullMask.values[i]
                result.values[index] = m * min(max(changed, 0), 1) + (1 - m) * original
            }
        }
        return result
    }
}
