import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetTensorCore
import Testing

func syntheticSample(width: Int = 40, height: Int = 30, maskRegion: CropRegion? = nil, seed: UInt64 = 1) -> Sample {
    var generator = SplitMix64(seed: seed)
    let target = PlanarImage(
        width: width, height: height, channels: 3,
        values: (0..<(3 * width * height)).map { _ in generator.nextUniform() })
    var mask = PlanarImage(width: width, height: height, channels: 1)
    let region = maskRegion ?? CropRegion(x: width / 4, y: height / 4, width: width / 2, height: height / 2)
    for y in region.y..<(region.y + region.height) {
        for x in region.x..<(region.x + region.width) { mask[0, y, x] = 1 }
    }
    var composite = target
    for i in composite.values.indices { composite.values[i] = 1 - composite.values[i] }
    let reference = SampleReference(
        subset: "S", name: "x_1_1.png", composite: URL(fileURLWithPath: "/c"), mask: URL(fileURLWithPath: "/m"),
        real: URL(fileURLWithPath: "/r"), listFile: "S_train.txt", line: 1)
    return Sample(reference: reference, composite: composite, mask: mask, target: target)
}

@Suite struct TransformTests {
    @Test func evaluationResizeGivesTheRequestedSize() {
        var generator = SplitMix64(seed: 0)
        let out = ResizeTransform(width: 16, height: 12).apply(to: syntheticSample(), generator: &generator)
        #expect(
            out.composite.width == 16 && out.composite.height == 12 && out.mask.width == 16 && out.target.height == 12)
    }

    @Test func trainingAugmentationIsDeterministicPerSeed() {
        let augmentation = TrainingAugmentation(width: 16, height: 16)
        let sample = syntheticSample()
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42), c = SplitMix64(seed: 43)
        let first = augmentation.apply(to: sample, generator: &a)
        let second = augmentation.apply(to: sample, generator: &b)
        #expect(first.composite == second.composite && first.mask == second.mask && first.target == second.target)
        var differs = false
        for seed in 43..<53 {
            c = SplitMix64(seed: UInt64(seed))
            if augmentation.apply(to: sample, generator: &c).target != first.target { differs = true }
        }
        #expect(differs)
    }

    @Test func randomCropsRespectScaleAndRatio() {
        let augmentation = TrainingAugmentation()
        var generator = SplitMix64(seed: 7)
        for _ in 0..<200 {
            let region = augmentation.randomCrop(width: 300, height: 200, generator: &generator)
            #expect(region.x >= 0 && region.y >= 0 && region.x + region.width <= 300 && region.y + region.height <= 200)
            let fraction = Float(region.width * region.height) / 60_000
            #expect(fraction > 0.48 && fraction <= 1.0, "\(region)")
            let ratio = Float(region.width) / Float(region.height)
            #expect(ratio > 0.73 && ratio < 1.37, "\(region)")
        }
    }

    @Test func cropsAreRedrawnUntilTheMaskIsInside() {
        // a 3x3 foreground in the corner of a 60x60 image: many crops miss it
        let sample = syntheticSample(width: 60, height: 60, maskRegion: CropRegion(x: 0, y: 0, width: 3, height: 3))
        let augmentation = TrainingAugmentation(width: 20, height: 20, flipProbability: 0)
        for seed in 0..<40 {
            var generator = SplitMix64(seed: UInt64(seed))
            let out = augmentation.apply(to: sample, generator: &generator)
            #expect(out.mask.values.reduce(0, +) >= 0.99, "seed \(seed)")
        }
        // an empty mask falls back to the whole image instead of looping or trapping
        var empty = sample
        empty.mask = PlanarImage(width: 60, height: 60, channels: 1)
        var generator = SplitMix64(seed: 1)
        #expect(
            augmentation.chooseCrop(for: empty.mask, generator: &generator)
                == CropRegion(x: 0, y: 0, width: 60, height: 60))
    }

    @Test func cropAndFlipMoveThePixelsTheySay() {
        let image = PlanarImage(width: 4, height: 3, channels: 1, values: (0..<12).map(Float.init))
        #expect(image.cropped(to: CropRegion(x: 1, y: 1, width: 2, height: 2)).values == [5, 6, 9, 10])
        #expect(image.flippedHorizontally().values == [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8])
        #expect(image.flippedHorizontally().flippedHorizontally() == image)
    }

    @Test func colorJitterChangesEachPixelByItsFormula() {
        let image = PlanarImage(width: 2, height: 1, channels: 3, values: [0.5, 0.9, 0.5, 0.9, 0.5, 0.9])
        let warm = GlobalColorJitter.Draw(multipliers: [1.1, 1.0, 0.9], saturation: 1)
        let out = GlobalColorJitter.apply(warm, to: image)
        // pixel 0: (0.55, 0.5, 0.45); pixel 1: (0.99, 0.9, 0.81)
        for (value, expected) in zip(out.values, [0.55, 0.99, 0.5, 0.9, 0.45, 0.81] as [Float]) {
            #expect((value - expected).magnitude < 1e-6)
        }
        let gray = GlobalColorJitter.apply(.init(multipliers: [1.1, 1.0, 0.9], saturation: 0), to: image)
        let luma0: Float = 0.299 * 0.55 + 0.587 * 0.5 + 0.114 * 0.45
        for channel in 0..<3 { #expect((gray.values[2 * channel] - luma0).magnitude < 1e-6) }
        let bright = GlobalColorJitter.apply(.init(multipliers: [1.2, 1.2, 1.2], saturation: 1.3), to: image)
        #expect(bright.values.allSatisfy { $0 >= 0 && $0 <= 1 } && bright.values[1] == 1)
    }

    @Test func colorJitterChangesCompositeAndTargetAlikeAndLeavesTheMask() {
        // the composite equals the target outside the mask, as a synthesized one does
        var sample = syntheticSample(width: 32, height: 24)
        for i in 0..<sample.mask.planeSize where sample.mask.values[i] == 0 {
            for c in 0..<3 {
                sample.composite.values[c * sample.mask.planeSize + i] =
                    sample.target.values[c * sample.mask.planeSize + i]
            }
        }
        let plain = TrainingAugmentation(width: 16, height: 16)
        var jittered = plain
        jittered.colorJitter = GlobalColorJitter(probability: 1)
        var changedSeeds = 0
        for seed in UInt64(0)..<8 {
            var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
            let before = plain.apply(to: sample, generator: &a)
            let after = jittered.apply(to: sample, generator: &b)
            #expect(after.mask == before.mask)
            #expect(after.composite.values.allSatisfy { $0 >= 0 && $0 <= 1 })
            // outside the mask the composite stays equal to the target
            let n = after.mask.planeSize
            for p in 0..<n where after.mask.values[p] == 0 && before.composite.values[p] == before.target.values[p] {
                for c in 0..<3 { #expect(after.composite.values[c * n + p] == after.target.values[c * n + p]) }
            }
            if after.target != before.target { changedSeeds += 1 }
        }
        #expect(changedSeeds == 8)
        // probability 0.5: some samples are left as they were (same crop: the jitter draws after it)
        var halfway = plain
        halfway.colorJitter = GlobalColorJitter(probability: 0.5)
        var unchanged = 0
        for seed in UInt64(0)..<32 {
            var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed)
            if halfway.apply(to: sample, generator: &a).target == plain.apply(to: sample, generator: &b).target {
                unchanged += 1
            }
        }
        #expect(unchanged > 4 && unchanged < 28)
    }

    @Test func backgroundShiftKeepsTheForegroundAndShiftsTheRest() {
        // 3 pixels: one inside the mask (1), one with a soft edge (0.25), one outside (0)
        let target = PlanarImage(
            width: 3, height: 1, channels: 3, values: [0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.3, 0.3, 0.3])
        let mask = PlanarImage(width: 3, height: 1, channels: 1, values: [1, 0.25, 0])
        let composite = PlanarImage(width: 3, height: 1, channels: 3, values: Array(repeating: 0.9, count: 9))
        let sample = Sample(reference: syntheticSample().reference, composite: composite, mask: mask, target: target)
        let warm = GlobalColorJitter.Draw(multipliers: [1.2, 1.0, 0.8], saturation: 1)
        let shifted = BackgroundShift.sample(from: sample, change: warm)
        let adjusted = GlobalColorJitter.apply(warm, to: target)
        #expect(shifted.target == adjusted)
        #expect(shifted.mask == mask)
        for c in 0..<3 {
            // inside: the original colour; edge: the blend; outside: the adjusted colour
            #expect(shifted.composite.values[c * 3] == target.values[c * 3])
            let edge = 0.25 * target.values[c * 3 + 1] + 0.75 * adjusted.values[c * 3 + 1]
            #expect((shifted.composite.values[c * 3 + 1] - edge).magnitude < 1e-6)
            #expect(shifted.composite.values[c * 3 + 2] == adjusted.values[c * 3 + 2])
        }
        // the change to learn is the adjustment of the foreground
        #expect(shifted.composite.values[0] == 0.5 && (shifted.target.values[0] - 0.6).magnitude < 1e-6)
    }

    @Test func backgroundShiftDrawsOnlyWhenSetAndByItsProbability() {
        let sample = syntheticSample(width: 32, height: 24)
        let plain = TrainingAugmentation(width: 16, height: 16)
        var always = plain
        always.backgroundShift = GlobalColorJitter(probability: 1)
        var halfway = plain
        halfway.backgroundShift = GlobalColorJitter(probability: 0.5)
        var replaced = 0
        for seed in UInt64(0)..<32 {
            var a = SplitMix64(seed: seed), b = SplitMix64(seed: seed), c = SplitMix64(seed: seed)
            let before = plain.apply(to: sample, generator: &a)
            let after = always.apply(to: sample, generator: &b)
            // same crop and flip (the shift draws after them); the target is the shifted image
            #expect(after.mask == before.mask)
            let n = after.mask.planeSize
            for p in 0..<n where after.mask.values[p] == 1 {
                for ch in 0..<3 { #expect(after.composite.values[ch * n + p] == before.target.values[ch * n + p]) }
            }
            for p in 0..<n where after.mask.values[p] == 0 {
                for ch in 0..<3 { #expect(after.composite.values[ch * n + p] == after.target.values[ch * n + p]) }
            }
            if halfway.apply(to: sample, generator: &c).composite != before.composite { replaced += 1 }
        }
        #expect(replaced > 4 && replaced < 28)
        // a real photo before a fresh composite is made of it (composite and target one image) is left alone
        let photo = Sample(
            reference: sample.reference, composite: sample.target, mask: sample.mask, target: sample.target)
        var a = SplitMix64(seed: 3), b = SplitMix64(seed: 3)
        let kept = always.apply(to: photo, generator: &a), plainPhoto = plain.apply(to: photo, generator: &b)
        #expect(kept.composite == plainPhoto.composite && kept.target == plainPhoto.target)
    }
}
