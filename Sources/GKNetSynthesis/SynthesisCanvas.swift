// A photo and its mask prepared once for the many draws of one composite (up to
// `CompositeSynthesizer.searchDraws`): the soft blend weight, the rectangle where it is not zero,
// and the photo in linear light and in Lab, each computed on first use. A draw then changes and
// blends only that rectangle's pixels; every other pixel of the composite is the photo's own,
// exactly what blending with a weight of zero gives. The values are the same, bit for bit, as
// changing and blending the whole photo (SynthesisCanvasTests checks it).
import Foundation
import GKNetImageCodec

/// One photo and mask, prepared for repeated changes (one synthesis call; not thread-safe).
final class SynthesisCanvas {
    let real: PlanarImage
    let mask: PlanarImage
    /// 1 x H x W: the binarized mask blurred by the edge sigma (the blend weight); nil for a canvas
    /// that changes the whole photo (`CompositeSynthesizer.apply`).
    let alpha: PlanarImage?
    /// The rectangle holding every pixel whose blend weight is not zero and every mask pixel (the
    /// whole photo without a blend weight).
    let rows: Range<Int>
    let columns: Range<Int>

    /// - Parameter edgeSigma: the blend weight's blur; nil: no blend weight, the whole photo changes.
    init(real: PlanarImage, mask: PlanarImage, edgeSigma: Float?) {
        precondition(
            real.channels == 3 && mask.channels == 1 && real.width == mask.width && real.height == mask.height,
            "SynthesisCanvas: expected an RGB photo and a 1-channel mask of its size")
        self.real = real
        self.mask = mask
        guard let edgeSigma else {
            alpha = nil
            rows = 0..<real.height
            columns = 0..<real.width
            return
        }
        let weight = mask.binarized().gaussianBlurred(sigma: edgeSigma)
        var top = real.height, bottom = 0, left = real.width, right = 0
        let weights = weight.values, maskValues = mask.values, width = real.width
        for y in 0..<real.height {
            for x in 0..<width where weights[y * width + x] != 0 || maskValues[y * width + x] > 0.5 {
                top = min(top, y)
                bottom = max(bottom, y + 1)
                left = min(left, x)
                right = max(right, x + 1)
            }
        }
        alpha = weight
        rows = top < bottom ? top..<bottom : 0..<0
        columns = left < right ? left..<right : 0..<0
    }

    /// Calls `body` with the plane index of every pixel of the rectangle, row by row.
    @inline(__always) private func forEachPixel(_ body: (Int) -> Void) {
        let width = real.width
        for y in rows {
            for x in columns { body(y * width + x) }
        }
    }

    /// 3 planes: the photo in linear light (the rectangle's pixels; 0 elsewhere).
    private(set) lazy var linearLight: [Float] = {
        let n = real.planeSize
        var out = [Float](repeating: 0, count: 3 * n)
        let values = real.values
        forEachPixel { p in
            for c in 0..<3 { out[c * n + p] = ColorSpace.linear(values[c * n + p]) }
        }
        return out
    }()

    /// 3 planes: the photo in Lab (the rectangle's pixels; 0 elsewhere).
    private(set) lazy var lab: [Float] = {
        let n = real.planeSize
        var out = [Float](repeating: 0, count: 3 * n)
        let values = real.values
        forEachPixel { p in
            (out[p], out[n + p], out[2 * n + p]) = ColorSpace.lab(
                red: values[p], green: values[n + p], blue: values[2 * n + p])
        }
        return out
    }()

    /// The photo's own foreground statistics (mask > 0.5, in Lab); nil without foreground.
    private(set) lazy var ownStatistics: ForegroundStatistics? = ForegroundStatistics.measure(
        name: "", lab: PlanarImage(width: real.width, height: real.height, channels: 3, values: lab), mask: mask)

    /// The photo with `adjustment` applied inside the rectangle (outside it, the photo).
    func changed(_ adjustment: Adjustment) -> PlanarImage {
        var out = real.values
        let n = real.planeSize
        change(adjustment, at: .rectangle) { p, r, g, b in
            out[p] = r
            out[n + p] = g
            out[2 * n + p] = b
        }
        return PlanarImage(width: real.width, height: real.height, channels: 3, values: out)
    }

    /// Which pixels a change visits: the rectangle's, row by row, or the mask's (`maskPixels`).
    private enum Pixels { case rectangle, mask }

    @inline(__always) private func visit(_ pixels: Pixels, _ body: (Int) -> Void) {
        switch pixels {
        case .rectangle: forEachPixel(body)
        case .mask: for p in maskPixels { body(p) }
        }
    }

    /// Calls `write(p, r, g, b)` with the changed photo's colour at every pixel p of `pixels`
    /// (the photo's own colour where a colour transfer finds no foreground statistics).
    @inline(__always) private func change(
        _ adjustment: Adjustment, at pixels: Pixels, write: (Int, Float, Float, Float) -> Void
    ) {
        let n = real.planeSize
        switch adjustment.family {
        case .colorTransfer:
            guard let own = ownStatistics, let target = adjustment.referenceStatistics else {
                let values = real.values
                visit(pixels) { p in write(p, values[p], values[n + p], values[2 * n + p]) }
                return
            }
            let t = adjustment.strength ?? 1
            var means = [Float](repeating: 0, count: 3), scales = [Float](repeating: 0, count: 3)
            for c in 0..<3 {
                // statistics moved a fraction t of the way to the reference's
                means[c] = own.mean[c] + t * (target.mean[c] - own.mean[c])
                let deviation = own.deviation[c] + t * (target.deviation[c] - own.deviation[c])
                scales[c] = (deviation + 1e-3) / (own.deviation[c] + 1e-3)
            }
            let lab = self.lab
            let (ownL, ownA, ownB) = (own.mean[0], own.mean[1], own.mean[2])
            let (scaleL, scaleA, scaleB) = (scales[0], scales[1], scales[2])
            let (meanL, meanA, meanB) = (means[0], means[1], means[2])
            visit(pixels) { p in
                let lightness = min(max((lab[p] - ownL) * scaleL + meanL, 0), 100)
                let a = (lab[n + p] - ownA) * scaleA + meanA
                let b = (lab[2 * n + p] - ownB) * scaleB + meanB
                let (red, green, blue) = ColorSpace.rgb(lightness: lightness, a: a, b: b)
                write(p, red, green, blue)
            }
        case .photoAdjustment:
            let exposureGain = pow(2, adjustment.exposure ?? 0)
            let allGains = adjustment.gains ?? [1, 1, 1]
            let gains = (allGains[0], allGains[1], allGains[2])
            let gamma = adjustment.gamma ?? 1, saturation = adjustment.saturation ?? 1
            let contrast = adjustment.contrast ?? 1
            let linear = linearLight
            @inline(__always) func developed(_ lit: Float, gain: Float) -> Float {
                // exposure and white balance in linear light, gamma on display values
                pow(ColorSpace.display(min(max(lit * exposureGain * gain, 0), 1)), gamma)
            }
            visit(pixels) { p in
                let r = developed(linear[p], gain: gains.0)
                let g = developed(linear[n + p], gain: gains.1)
                let b = developed(linear[2 * n + p], gain: gains.2)
                let gray = 0.299 * r + 0.587 * g + 0.114 * b
                @inline(__always) func finished(_ v: Float) -> Float {
                    min(max(((gray + (v - gray) * saturation) - 0.5) * contrast + 0.5, 0), 1)
                }
                write(p, finished(r), finished(g), finished(b))
            }
        case .timeOfDay:
            let curves = (adjustment.curveKnots ?? [[0, 1], [0, 1], [0, 1]]).map { ToneCurve(knots: $0) }
            let (red, green, blue) = (curves[0], curves[1], curves[2])
            let values = real.values
            visit(pixels) { p in write(p, red(values[p]), green(values[n + p]), blue(values[2 * n + p])) }
        }
    }

    /// The pixels where the mask is not zero, in order (every pixel the two measures below read).
    private lazy var maskPixels: [Int] = {
        let values = mask.values
        return values.indices.filter { values[$0] != 0 }
    }()

    /// The composite of `adjustment` measured without making it: its foreground change
    /// (`CompositeSynthesizer.foregroundChange`) and fMSE at the photo's own size (`compositeFMSE`
    /// with no resize), both from the mask's pixels alone and equal to those functions' results.
    func foregroundChangeAndFMSE(_ adjustment: Adjustment) -> (change: Float, fmse: Double) {
        let n = real.planeSize
        var changeTotal: Double = 0, changeCount = 0
        var weighted = 0.0, maskSum = 0.0
        let weights = alpha?.values, maskValues = mask.values, realValues = real.values
        change(adjustment, at: .mask) { p, r, g, b in
            let weight = weights?[p] ?? 1
            let m = Double(maskValues[p])
            maskSum += m
            let isForeground = maskValues[p] > 0.5
            if isForeground { changeCount += 1 }
            @inline(__always) func add(_ changed: Float, own: Float) {
                let composite = weights == nil ? changed : changed * weight + own * (1 - weight)
                if isForeground { changeTotal += Double(abs(composite - own)) }
                let d = 255 * Double(composite - own)
                weighted += m * d * d
            }
            add(r, own: realValues[p])
            add(g, own: realValues[n + p])
            add(b, own: realValues[2 * n + p])
        }
        let change = changeCount == 0 ? 0 : Float(changeTotal / Double(3 * changeCount))
        return (change, weighted / (3 * maskSum + 1e-6))
    }

    /// `changed` blended into the photo by the blend weight: the composite.
    func composite(_ adjustment: Adjustment) -> PlanarImage { blend(changed(adjustment)) }

    /// `changed` (the photo's size) blended into the photo by the blend weight (outside the
    /// rectangle, where the weight is zero: the photo).
    func blend(_ changed: PlanarImage) -> PlanarImage {
        guard let alpha else { return changed }
        let n = real.planeSize
        let weights = alpha.values, changedValues = changed.values, realValues = real.values
        var out = realValues
        forEachPixel { p in
            let a = weights[p]
            for c in 0..<3 { out[c * n + p] = changedValues[c * n + p] * a + realValues[c * n + p] * (1 - a) }
        }
        return PlanarImage(width: real.width, height: real.height, channels: 3, values: out)
    }
}
