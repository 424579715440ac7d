// Carrying the network's 256x256 colour change to the composite's full resolution without losing
// the composite's detail. The network's output pixels are never upsampled themselves (except by
// the `naiveUpsampling` baseline kept for comparison): instead a smooth field of local affine
// colour transforms is fitted at low resolution, from composite to prediction, and applied to the
// full-resolution composite.
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// How the low-resolution prediction becomes a full-resolution result.
public enum FullResolutionMethod: String, Codable, Sendable, CaseIterable {
    /// Fitted local affine colour transforms on a grid, interpolated per pixel (the default).
    case localAffine = "local-affine"
    /// Upsample (prediction - composite) bilinearly and add it to the full composite.
    case upsampledResidual = "upsampled-residual"
    /// Upsample the prediction itself (baseline only: loses all detail above 256 px).
    case naiveUpsampling = "naive-upsampling"
    /// Models with the `affine` head: upsample the predicted per-pixel colour transforms
    /// bilinearly and apply them to every full-resolution pixel.
    case upsampledTransform = "upsampled-transform"
}

/// Settings of the local affine fit. Defaults chosen on the 1024 px tuning pairs (docs/results.md,
/// "Full resolution"): scores are flat across grids 2-16 and ridge weights 4-1024 (within 1 %); a
/// finer grid with a firmer pull toward the global transform was best by a small margin.
public struct LocalAffineSettings: Codable, Sendable, Equatable {
    /// Cells per side of the grid laid over the low-resolution image.
    public var gridSize = 16
    /// Each cell's fit uses pixels within this many cell widths of its centre (overlap smooths).
    public var windowRadiusInCells: Float = 1.0
    /// Ridge weight pulling each local transform toward the global one (in units of pixel weight).
    public var regularization: Float = 256
    /// Ridge weight pulling the global transform toward the identity.
    public var globalRegularization: Float = 1e-2

    public init() {}
}

/// A 3x4 colour transform: out_c = sum_k A[c][k] * in_k + A[c][3].
public typealias AffineColorTransform = [Float]  // 12 values, row-major 3 x 4

/// Fits the field of local affine colour transforms mapping `composite` to `prediction`
/// (both 3 x h x w in 0...1), weighted by `mask` (h x w).
///
/// A global transform is fitted over the whole foreground (ridge toward the identity); each grid
/// cell's transform is the weighted least-squares fit over a tent-weighted window around the cell
/// centre (radius `windowRadiusInCells + 0.5` cells), with a ridge toward the global transform, so
/// cells with little foreground fall back to it.
/// - Returns: gridSize x gridSize transforms (row-major cells), each 12 floats.
public func fitLocalAffineTransforms(
    composite: PlanarImage, prediction: PlanarImage, mask: PlanarImage,
    settings: LocalAffineSettings = LocalAffineSettings()
) -> [AffineColorTransform] {
    precondition(
        composite.channels == 3 && prediction.channels == 3 && mask.channels == 1,
        "fitLocalAffineTransforms: need 3-channel images and a 1-channel mask")
    precondition(
        composite.height == prediction.height && composite.width == prediction.width && mask.height == composite.height
            && mask.width == composite.width,
        "fitLocalAffineTransforms: composite \(composite.height)x\(composite.width), prediction "
            + "\(prediction.height)x\(prediction.width), mask \(mask.height)x\(mask.width) differ"
    )
    let (h, w) = (composite.height, composite.width)
    let plane = h * w
    let identity: [Double] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    let c = composite.values, p = prediction.values, m = mask.values
    func add(_ statistics: inout AffineStatistics, _ i: Int, _ weight: Double) {
        statistics.add(
            r: Double(c[i]), g: Double(c[plane + i]), b: Double(c[2 * plane + i]),
            pr: Double(p[i]), pg: Double(p[plane + i]), pb: Double(p[2 * plane + i]), weight: weight)
    }
    // Global fit over the whole foreground, ridge toward identity.
    var globalStatistics = AffineStatistics()
    for i in 0..<plane { add(&globalStatistics, i, Double(m[i]) + 1e-4) }
    let global = globalStatistics.solve(
        prior: identity,
        priorWeight: Double(settings.globalRegularization) * max(1, globalStatistics.totalWeight * 1e-3))

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
                    let weight = Double(m[y * w + x]) * wy * wx
                    if weight > 0 { add(&statistics, y * w + x, weight) }
                }
            }
            let solved = statistics.solve(prior: global, priorWeight: Double(settings.regularization))
            transforms[cellY * grid + cellX] = solved.map { Float($0) }
        }
    }
    return transforms
}

/// Applies a field of local affine transforms to a full-resolution composite, interpolating the
/// coefficients bilinearly between cell centres (clamped at the border), then blends with the mask:
/// result = mask * clamp(A(x, y) [c; 1], 0, 1) + (1 - mask) * composite (background unchanged).
///
/// Per row: the 12 coefficients are interpolated vertically once per grid column, then
/// horizontally for the row's foreground span only (pixels left and right of it are copied).
public func applyLocalAffineTransforms(
    _ transforms: [AffineColorTransform], gridSize: Int, composite: PlanarImage, mask: PlanarImage
) -> PlanarImage {
    precondition(
        transforms.count == gridSize * gridSize && transforms.allSatisfy { $0.count == 12 },
        "applyLocalAffineTransforms: \(transforms.count) transforms for a \(gridSize)x\(gridSize) grid")
    let g = gridSize
    // field[(k * g + cellY) * g + cellX]: coefficient k of each cell, one g x g plane per k
    var field = [Float](repeating: 0, count: 12 * g * g)
    for cell in 0..<g * g { for k in 0..<12 { field[k * g * g + cell] = transforms[cell][k] } }
    return applyAffineField(field, gridHeight: g, gridWidth: g, composite: composite, mask: mask)
}

/// Applies the per-pixel colour transforms predicted by a network with the `affine` head, upsampled
/// bilinearly (align-corners false, clamped at the border) from the network's resolution, then
/// blends with the mask (background unchanged).
/// - Parameters:
///   - transform: 12 x h x w in the network's layout (`GKNet.applyColorTransform`: channel 3j + c
///     = A'[c][j], channel 9 + c = b[c]; the transform is (I + A') c + b).
///   - composite: 3 x H x W.
///   - mask: 1 x H x W.
public func applyUpsampledColorTransform(_ transform: PlanarImage, composite: PlanarImage, mask: PlanarImage)
    -> PlanarImage
{
    precondition(
        transform.channels == 12, "applyUpsampledColorTransform: need 12 transform channels, have \(transform.channels)"
    )
    let plane = transform.planeSize
    var field = [Float](repeating: 0, count: 12 * plane)
    for c in 0..<3 {
        for j in 0..<3 {
            let from = (3 * j + c) * plane, to = (c * 4 + j) * plane
            let identity: Float = c == j ? 1 : 0
            for p in 0..<plane { field[to + p] = identity + transform.values[from + p] }
        }
        let from = (9 + c) * plane, to = (c * 4 + 3) * plane
        for p in 0..<plane { field[to + p] = transform.values[from + p] }
    }
    return applyAffineField(
        field, gridHeight: transform.height, gridWidth: transform.width, composite: composite, mask: mask)
}

/// Interpolates a field of 3x4 colour transforms given at the centres of a gridHeight x gridWidth
/// grid over the image bilinearly (clamped at the border), applies it to every pixel, clamps to
/// 0...1 and blends: result = mask * clamp(A(x, y) [c; 1]) + (1 - mask) * composite.
///
/// Per row: the 12 coefficients are interpolated vertically once per grid column, then
/// horizontally for the row's foreground span only (pixels left and right of it are copied).
/// - Parameter field: 12 planes of gridHeight x gridWidth; plane k = c * 4 + j holds A[c][j]
///   (j = 3: the offset).
func applyAffineField(
    _ field: [Float], gridHeight gh: Int, gridWidth gw: Int, composite: PlanarImage, mask: PlanarImage
) -> PlanarImage {
    precondition(field.count == 12 * gh * gw, "applyAffineField: \(field.count) values for a \(gh)x\(gw) grid")
    precondition(
        mask.height == composite.height && mask.width == composite.width,
        "applyAffineField: composite \(composite.height)x\(composite.width) and mask \(mask.height)x\(mask.width) "
            + "differ"
    )
    var result = composite
    composite.values.withUnsafeBufferPointer { source in
        mask.values.withUnsafeBufferPointer { alpha in
            result.values.withUnsafeMutableBufferPointer { destination in
                field.withUnsafeBufferPointer { field in
                    let pass = AffineFieldPass(
                        field: field.baseAddress!, gridHeight: gh, gridWidth: gw, height: composite.height,
                        width: composite.width, source: source.baseAddress!, alpha: alpha.baseAddress!,
                        output: destination.baseAddress!)
                    defer { pass.deallocate() }
                    parallelChunks(composite.height, minimumPerThread: 16) { rows in
                        // per-thread scratch: row coefficients (12 x gw) and per-pixel ones (12 x w)
                        let rowField = UnsafeMutablePointer<Float>.allocate(capacity: 12 * gw)
                        let coefficients = UnsafeMutablePointer<Float>.allocate(capacity: 12 * composite.width)
                        defer {
                            rowField.deallocate()
                            coefficients.deallocate()
                        }
                        for y in rows { pass.apply(row: y, rowField: rowField, coefficients: coefficients) }
                    }
                }
            }
        }
    }
    return result
}

/// The buffers of one `applyAffineField` call and the bilinear position of every column on the grid.
private struct AffineFieldPass {
    let field: UnsafePointer<Float>
    let gridHeight: Int, gridWidth: Int, height: Int, width: Int
    let source: UnsafePointer<Float>, alpha: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    /// Per column: the grid cells left and right of it and its fraction between them.
    let columnLower: UnsafeMutableBufferPointer<Int>, columnUpper: UnsafeMutableBufferPointer<Int>
    let columnFraction: UnsafeMutableBufferPointer<Float>

    init(
        field: UnsafePointer<Float>, gridHeight: Int, gridWidth: Int, height: Int, width: Int,
        source: UnsafePointer<Float>, alpha: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>
    ) {
        (self.field, self.gridHeight, self.gridWidth, self.height, self.width) =
            (field, gridHeight, gridWidth, height, width)
        (self.source, self.alpha, self.output) = (source, alpha, output)
        columnLower = .allocate(capacity: width)
        columnUpper = .allocate(capacity: width)
        columnFraction = .allocate(capacity: width)
        for x in 0..<width {
            (columnLower[x], columnUpper[x], columnFraction[x]) = Self.position(x, size: width, cells: gridWidth)
        }
    }

    func deallocate() {
        columnLower.deallocate()
        columnUpper.deallocate()
        columnFraction.deallocate()
    }

    /// Bilinear position of pixel `index` among `size` pixels on the grid of cell centres.
    static func position(_ index: Int, size: Int, cells g: Int) -> (lower: Int, upper: Int, fraction: Float) {
        let t = (Float(index) + 0.5) / Float(size) * Float(g) - 0.5
        let clamped = min(max(t, 0), Float(g - 1))
        let lower = min(Int(clamped), g - 1)
        return (lower, min(lower + 1, g - 1), clamped - Float(lower))
    }

    /// Row `y`: the 12 coefficients interpolated vertically once per grid column, then horizontally
    /// over the row's foreground span only (pixels left and right of it keep the composite's values).
    func apply(row y: Int, rowField: UnsafeMutablePointer<Float>, coefficients: UnsafeMutablePointer<Float>) {
        let (w, gh, gw, plane) = (width, gridHeight, gridWidth, height * width)
        let row = y * w
        var first = 0, last = w
        while first < w && alpha[row + first] <= 0 { first += 1 }
        if first == w { return }
        while last > first && alpha[row + last - 1] <= 0 { last -= 1 }
        let (rowLower, rowUpper, fy) = Self.position(y, size: height, cells: gh)
        for k in 0..<12 {
            for cellX in 0..<gw {
                let top = field[(k * gh + rowLower) * gw + cellX], bottom = field[(k * gh + rowUpper) * gw + cellX]
                rowField[k * gw + cellX] = top + (bottom - top) * fy
            }
        }
        for k in 0..<12 {
            let line = rowField + k * gw, target = coefficients + k * w
            for x in first..<last {
                let a = line[columnLower[x]], b = line[columnUpper[x]]
                target[x] = a + (b - a) * columnFraction[x]
            }
        }
        let r = source + row, g = r + plane, b = g + plane
        for channel in 0..<3 {
            let a0 = coefficients + (channel * 4) * w, a1 = a0 + w, a2 = a1 + w, a3 = a2 + w
            let input = source + channel * plane + row, out = output + channel * plane + row
            for x in first..<last {
                let value = min(max(a0[x] * r[x] + a1[x] * g[x] + a2[x] * b[x] + a3[x], 0), 1)
                let m = alpha[row + x]
                out[x] = m * value + (1 - m) * input[x]
            }
        }
    }
}

/// Weighted least-squares sufficient statistics for a 3x4 affine colour fit.
struct AffineStatistics {
    /// sum w * [c;1][c;1]^T (4x4) and sum w * [c;1] * p^T (4x3).
    var gram = [Double](repeating: 0, count: 16)
    var cross = [Double](repeating: 0, count: 12)
    var totalWeight = 0.0

    /// Adds pixel colour (r, g, b) -> target (pr, pg, pb) with `weight`. Only the upper triangle of
    /// `gram` is accumulated here; `solve` mirrors it.
    mutating func add(r: Double, g: Double, b: Double, pr: Double, pg: Double, pb: Double, weight: Double) {
        let (wr, wg, wb) = (weight * r, weight * g, weight * b)
        gram[0] += wr * r
        gram[1] += wr * g
        gram[2] += wr * b
        gram[3] += wr
        gram[5] += wg * g
        gram[6] += wg * b
        gram[7] += wg
        gram[10] += wb * b
        gram[11] += wb
        gram[15] += weight
        cross[0] += wr * pr
        cross[1] += wr * pg
        cross[2] += wr * pb
        cross[3] += wg * pr
        cross[4] += wg * pg
        cross[5] += wg * pb
        cross[6] += wb * pr
        cross[7] += wb * pg
        cross[8] += wb * pb
        cross[9] += weight * pr
        cross[10] += weight * pg
        cross[11] += weight * pb
        totalWeight += weight
    }

    /// Solves min sum w ||A [c;1] - p||^2 + priorWeight ||A - prior||^2 for the 3x4 matrix A.
    func solve(prior: [Double], priorWeight: Double) -> [Double] {
        var matrix = gram
        for i in 0..<4 {
            for j in 0..<i { matrix[i * 4 + j] = matrix[j * 4 + i] }
            matrix[i * 4 + i] += priorWeight
        }
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
///   - method: how the change reaches full resolution.
///   - composite: 3 x h x w low-resolution network input (0...1).
///   - prediction: 3 x h x w low-resolution network output (0...1).
///   - mask: 1 x h x w low-resolution mask.
///   - fullComposite: 3 x H x W.
///   - fullMask: 1 x H x W (0...1, soft allowed).
///   - settings: the settings of `.localAffine`.
///   - transform: 12 x h x w, the colour transforms of an `affine`-head network (needed by
///     `.upsampledTransform`, which otherwise falls back to `.localAffine`).
/// - Returns: 3 x H x W; background pixels (mask 0) equal `fullComposite` exactly.
public func carryToFullResolution(
    method: FullResolutionMethod, composite: PlanarImage, prediction: PlanarImage, mask: PlanarImage,
    fullComposite: PlanarImage, fullMask: PlanarImage, settings: LocalAffineSettings = LocalAffineSettings(),
    transform: PlanarImage? = nil
) -> PlanarImage {
    switch method {
    case .upsampledTransform:
        guard let transform else {
            return carryToFullResolution(
                method: .localAffine, composite: composite, prediction: prediction, mask: mask,
                fullComposite: fullComposite, fullMask: fullMask, settings: settings)
        }
        return applyUpsampledColorTransform(transform, composite: fullComposite, mask: fullMask)
    case .localAffine:
        let transforms = fitLocalAffineTransforms(
            composite: composite, prediction: prediction, mask: mask, settings: settings)
        return applyLocalAffineTransforms(
            transforms, gridSize: settings.gridSize, composite: fullComposite, mask: fullMask)
    case .upsampledResidual, .naiveUpsampling:
        let source: PlanarImage
        if method == .naiveUpsampling {
            source = prediction
        } else {
            var residual = prediction
            for i in residual.values.indices { residual.values[i] -= composite.values[i] }
            source = residual
        }
        let upsampled = source.resized(width: fullComposite.width, height: fullComposite.height, filter: .bilinear)
        var result = fullComposite
        let plane = fullComposite.planeSize
        let addsComposite: Float = method == .naiveUpsampling ? 0 : 1
        fullComposite.values.withUnsafeBufferPointer { original in
            upsampled.values.withUnsafeBufferPointer { change in
                fullMask.values.withUnsafeBufferPointer { alpha in
                    result.values.withUnsafeMutableBufferPointer { out in
                        parallelChunks(plane, minimumPerThread: 1 << 16) { range in
                            for channel in 0..<3 {
                                for i in range {
                                    let index = channel * plane + i
                                    let changed = min(max(addsComposite * original[index] + change[index], 0), 1)
                                    out[index] = alpha[i] * changed + (1 - alpha[i]) * original[index]
                                }
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}
