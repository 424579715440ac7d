// The synthesis canvas (one photo prepared for many draws) against the plain arithmetic it
// replaced: the whole photo changed, then blended with the blurred mask, every pixel. Equal bit
// for bit, so composites (fixed sets and fresh ones) are the same as before it.
import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetTensorCore
import Testing

@testable import GKNetSynthesis

@Suite struct SynthesisCanvasTests {
    let references = (1...3).compactMap { seed -> ForegroundStatistics? in
        let (photo, mask) = proceduralPhoto(seed: 200 + UInt64(seed))
        return ForegroundStatistics.measure(name: "ref\(seed)", photo: photo, mask: mask)
    }

    /// The whole photo with `adjustment` applied, written plainly (whole-image colour conversions).
    func plainChange(_ adjustment: Adjustment, real: PlanarImage, mask: PlanarImage) -> PlanarImage {
        let n = real.planeSize
        var out = real
        switch adjustment.family {
        case .colorTransfer:
            var lab = ColorSpace.lab(fromRGB: real)
            guard let own = ForegroundStatistics.measure(name: "", photo: real, mask: mask),
                let target = adjustment.referenceStatistics
            else { return real }
            let t = adjustment.strength ?? 1
            for c in 0..<3 {
                let mean = own.mean[c] + t * (target.mean[c] - own.mean[c])
                let deviation = own.deviation[c] + t * (target.deviation[c] - own.deviation[c])
                let scale = (deviation + 1e-3) / (own.deviation[c] + 1e-3)
                for p in 0..<n { lab.values[c * n + p] = (lab.values[c * n + p] - own.mean[c]) * scale + mean }
            }
            for p in 0..<n { lab.values[p] = min(max(lab.values[p], 0), 100) }
            return ColorSpace.rgb(fromLab: lab)
        case .photoAdjustment:
            let exposureGain = pow(2, adjustment.exposure ?? 0)
            let gains = adjustment.gains ?? [1, 1, 1]
            let gamma = adjustment.gamma ?? 1, saturation = adjustment.saturation ?? 1
            let contrast = adjustment.contrast ?? 1
            for p in 0..<n {
                let developed = (0..<3).map { c in
                    let lit = ColorSpace.linear(real.values[c * n + p]) * exposureGain * gains[c]
                    return pow(ColorSpace.display(min(max(lit, 0), 1)), gamma)
                }
                let gray = 0.299 * developed[0] + 0.587 * developed[1] + 0.114 * developed[2]
                for c in 0..<3 {
                    out.values[c * n + p] = min(
                        max(((gray + (developed[c] - gray) * saturation) - 0.5) * contrast + 0.5, 0), 1)
                }
            }
        case .timeOfDay:
            let curves = (adjustment.curveKnots ?? [[0, 1], [0, 1], [0, 1]]).map { ToneCurve(knots: $0) }
            for c in 0..<3 {
                for p in 0..<n { out.values[c * n + p] = curves[c](real.values[c * n + p]) }
            }
        }
        return out
    }

    /// `changed` blended into `real` by the blurred binary mask, every pixel.
    func plainBlend(_ changed: PlanarImage, real: PlanarImage, mask: PlanarImage, sigma: Float) -> PlanarImage {
        let binary = PlanarImage(
            width: mask.width, height: mask.height, channels: 1, values: mask.values.map { $0 > 0.5 ? 1 : 0 })
        let alpha = binary.gaussianBlurred(sigma: sigma)
        var out = real
        let n = real.planeSize
        for c in 0..<3 {
            for p in 0..<n {
                let a = alpha.values[p]
                out.values[c * n + p] = changed.values[c * n + p] * a + real.values[c * n + p] * (1 - a)
            }
        }
        return out
    }

    /// Photos whose foreground sits in the middle, touches a border, or is a single pixel.
    func photos() -> [(PlanarImage, PlanarImage)] {
        var cases = (0..<3).map { proceduralPhoto(width: 40 + 7 * $0, height: 30 + 5 * $0, seed: 50 + UInt64($0)) }
        var (photo, mask) = proceduralPhoto(width: 33, height: 29, seed: 60)
        for y in 0..<mask.height {
            for x in 0..<mask.width { mask[0, y, x] = x < 6 || y > 25 ? 1 : 0 }
        }
        cases.append((photo, mask))
        (photo, mask) = proceduralPhoto(width: 21, height: 17, seed: 61)
        mask = PlanarImage(width: 21, height: 17, channels: 1)
        mask[0, 8, 20] = 1
        cases.append((photo, mask))
        return cases
    }

    @Test(arguments: CompositeFamily.allCases)
    func canvasEqualsChangingAndBlendingTheWholePhoto(family: CompositeFamily) {
        var synthesizer = CompositeSynthesizer()
        synthesizer.familyWeights = [family: 1]
        var generator = SplitMix64(seed: 7)
        for (index, (photo, mask)) in photos().enumerated() {
            let canvas = SynthesisCanvas(real: photo, mask: mask, edgeSigma: synthesizer.edgeSigma)
            for draw in 0..<6 {
                let adjustment = synthesizer.drawAdjustment(references: references, generator: &generator)
                let changed = plainChange(adjustment, real: photo, mask: mask)
                let expected = plainBlend(changed, real: photo, mask: mask, sigma: synthesizer.edgeSigma)
                let label = "photo \(index) draw \(draw)"
                #expect(differences(synthesizer.apply(adjustment, to: photo, mask: mask), changed) == 0, "\(label)")
                #expect(differences(canvas.composite(adjustment), expected) == 0, "\(label)")
                #expect(
                    differences(synthesizer.blend(changed: changed, real: photo, mask: mask), expected) == 0, "\(label)"
                )
                // the draw's measures from the mask's pixels alone, equal to the whole composite's
                let measured = canvas.foregroundChangeAndFMSE(adjustment)
                #expect(measured.change == synthesizer.foregroundChange(expected, photo, mask: mask))
                #expect(measured.fmse == compositeFMSE(composite: expected, real: photo, mask: mask, size: nil))
            }
        }
    }

    /// The realistic-difficulty search written plainly: every draw made whole, then measured.
    func plainSynthesis(
        _ synthesizer: CompositeSynthesizer, real: PlanarImage, mask: PlanarImage, generator: inout SplitMix64
    ) -> (composite: PlanarImage, attempts: Int)? {
        let target = synthesizer.targetDifficulty.draw(&generator)
        var strongest: (composite: PlanarImage, fmse: Double)?
        var accepted: (composite: PlanarImage, fmse: Double, attempt: Int)?
        for attempt in 1...synthesizer.searchDraws {
            let adjustment = synthesizer.drawAdjustment(references: references, generator: &generator)
            let composite = plainBlend(
                plainChange(adjustment, real: real, mask: mask), real: real, mask: mask, sigma: synthesizer.edgeSigma)
            let change = synthesizer.foregroundChange(composite, real, mask: mask)
            guard change > 0 && change <= synthesizer.maximumChange else { continue }
            let fmse = compositeFMSE(
                composite: composite, real: real, mask: mask, size: synthesizer.targetDifficulty.measurementSize)
            guard fmse > 0 else { continue }
            if fmse >= target {
                accepted = (composite, fmse, attempt)
                break
            }
            if fmse > strongest?.fmse ?? 0 { strongest = (composite, fmse) }
        }
        guard let chosen = accepted.map({ ($0.composite, $0.fmse) }) ?? strongest else { return nil }
        let scale = chosen.1 > target ? Float((target / chosen.1).squareRoot()) : 1
        var composite = chosen.0
        if scale < 1 {
            for i in composite.values.indices {
                composite.values[i] = real.values[i] + scale * (composite.values[i] - real.values[i])
            }
        }
        return (composite, accepted?.attempt ?? synthesizer.searchDraws)
    }

    @Test(arguments: [nil, 256] as [Int?])
    func synthesisEqualsThePlainSearch(measurementSize: Int?) throws {
        // at the photo's own size (fresh composites) the draws are measured on the mask's pixels
        // and only the chosen one is made whole; at another size every draw is made whole
        var synthesizer = CompositeSynthesizer()
        synthesizer.targetDifficulty.measurementSize = measurementSize
        for (index, (photo, mask)) in photos().enumerated() where mask.values.contains(where: { $0 > 0.5 }) {
            for seed in 0..<8 as Range<UInt64> {
                var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
                let made = synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &a)
                let plain = plainSynthesis(synthesizer, real: photo, mask: mask, generator: &b)
                #expect((made == nil) == (plain == nil), "photo \(index) seed \(seed)")
                if let made, let plain {
                    #expect(differences(made.composite, plain.composite) == 0, "photo \(index) seed \(seed)")
                }
                #expect(made?.attempts == plain?.attempts, "photo \(index) seed \(seed)")
                #expect(a.next() == b.next(), "photo \(index) seed \(seed): the generators left in step")
            }
        }
    }

    /// The blur as plain loops: every tap of every output, clamped at the borders.
    func plainBlur(_ image: PlanarImage, sigma: Float) -> PlanarImage {
        let radius = Int((3 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        let (width, height) = (image.width, image.height)
        var horizontal = [Float](repeating: 0, count: image.values.count)
        for row in 0..<(image.channels * height) {
            for x in 0..<width {
                var sum: Float = 0
                for k in -radius...radius {
                    sum += kernel[k + radius] * image.values[row * width + min(max(x + k, 0), width - 1)]
                }
                horizontal[row * width + x] = sum
            }
        }
        var out = [Float](repeating: 0, count: image.values.count)
        for c in 0..<image.channels {
            for y in 0..<height {
                for k in -radius...radius {
                    let source = (c * height + min(max(y + k, 0), height - 1)) * width
                    for x in 0..<width {
                        out[(c * height + y) * width + x] += kernel[k + radius] * horizontal[source + x]
                    }
                }
            }
        }
        return PlanarImage(width: width, height: height, channels: image.channels, values: out)
    }

    @Test(arguments: [0.6, 1.5, 4] as [Float])
    func blurEqualsThePlainLoops(sigma: Float) {
        // masks with empty rows, foregrounds on a border, images narrower than the kernel, and a
        // grey image with no zero at all
        var generator = SplitMix64(seed: 9)
        for (width, height) in [(37, 23), (5, 9), (1, 4), (64, 3)] {
            for density in [0.0, 0.05, 0.5, 1.0] as [Float] {
                let values = (0..<(2 * width * height)).map { index -> Float in
                    let row = index / width
                    if density < 1 && row % 3 == 1 { return 0 }
                    return density == 1 ? generator.uniform(0.1...1) : (generator.chance(density) ? 1 : 0)
                }
                let image = PlanarImage(width: width, height: height, channels: 2, values: values)
                let blurred = image.gaussianBlurred(sigma: sigma), plain = plainBlur(image, sigma: sigma)
                #expect(differences(blurred, plain) == 0, "\(width)x\(height) density \(density) sigma \(sigma)")
            }
        }
    }
}

/// How many values of two images differ, bit for bit (a size mismatch counts them all).
private func differences(_ a: PlanarImage, _ b: PlanarImage) -> Int {
    guard a.values.count == b.values.count else { return max(a.values.count, b.values.count) }
    return zip(a.values, b.values).filter { $0.bitPattern != $1.bitPattern }.count
}
