import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetSynthesis
import GKNetTensorCore
import Testing

/// A procedural "photo": smooth colour gradients with a textured disc (the foreground) and its mask.
func proceduralPhoto(width: Int = 48, height: Int = 36, seed: UInt64) -> (photo: PlanarImage, mask: PlanarImage) {
    var generator = SplitMix64(seed: seed)
    let hue = (0..<3).map { _ in generator.nextUniform() }
    var photo = PlanarImage(width: width, height: height, channels: 3)
    var mask = PlanarImage(width: width, height: height, channels: 1)
    let cx = Float(width) * (0.4 + 0.2 * generator.nextUniform()), cy = Float(height) / 2, radius = Float(height) / 3
    for y in 0..<height {
        for x in 0..<width {
            let inside = (Float(x) - cx) * (Float(x) - cx) + (Float(y) - cy) * (Float(y) - cy) < radius * radius
            mask[0, y, x] = inside ? 1 : 0
            for c in 0..<3 {
                let background = 0.2 + 0.6 * Float(x + c * y) / Float(width + 2 * height)
                let object = hue[c] * 0.7 + 0.15 + 0.1 * sin(Float(x * (c + 1)) / 3)
                photo[c, y, x] = inside ? object : background
            }
        }
    }
    return (photo, mask)
}

@Suite struct SynthesisTests {
    let references = (1...3).compactMap { seed -> ForegroundStatistics? in
        let (photo, mask) = proceduralPhoto(seed: 100 + UInt64(seed))
        return ForegroundStatistics.measure(name: "ref\(seed)", photo: photo, mask: mask)
    }

    @Test func sameSeedSameComposite() throws {
        let (photo, mask) = proceduralPhoto(seed: 1)
        let synthesizer = CompositeSynthesizer()
        var a = SplitMix64(seed: 11), b = SplitMix64(seed: 11)
        let first = try #require(synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &a))
        let second = try #require(
            synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &b))
        #expect(first.composite == second.composite && first.adjustment == second.adjustment)
        var distinct = Set<[Float]>()
        for seed in 0..<8 {
            var generator = SplitMix64(seed: UInt64(seed))
            if let made = synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &generator)
            {
                distinct.insert(made.composite.values)
            }
        }
        #expect(distinct.count >= 7)
    }

    @Test(arguments: CompositeFamily.allCases)
    func everyFamilyChangesOnlyTheForeground(family: CompositeFamily) throws {
        let (photo, mask) = proceduralPhoto(seed: 2)
        var synthesizer = CompositeSynthesizer()
        synthesizer.familyWeights = [family: 1]
        synthesizer.difficulty = .legacy
        var generator = SplitMix64(seed: 3)
        let made = try #require(
            synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &generator))
        #expect(made.adjustment.family == family)
        #expect(
            made.change >= synthesizer.minimumChange && made.targetFMSE == nil && made.adjustment.changeScale == nil)
        // pixels more than 4 px (4 sigma) from the foreground are untouched
        let n = photo.planeSize
        for y in 0..<photo.height {
            for x in 0..<photo.width {
                var near = false
                for dy in -4...4 {
                    for dx in -4...4 {
                        let yy = y + dy, xx = x + dx
                        if yy >= 0, yy < photo.height, xx >= 0, xx < photo.width, mask[0, yy, xx] > 0.5 { near = true }
                    }
                }
                if !near {
                    for c in 0..<3 {
                        #expect(
                            made.composite.values[c * n + y * photo.width + x]
                                == photo.values[c * n + y * photo.width + x])
                    }
                }
            }
        }
    }

    @Test func barelyChangedForegroundsAreRejected() {
        let (photo, mask) = proceduralPhoto(seed: 4)
        var synthesizer = CompositeSynthesizer()
        synthesizer.difficulty = .legacy
        synthesizer.familyWeights = [.photoAdjustment: 1]
        synthesizer.exposure = 0...0
        synthesizer.gamma = 1...1
        synthesizer.gain = 1...1
        synthesizer.saturation = 1...1
        synthesizer.contrast = 1.01...1.02  // a change far below the 0.03 threshold
        var generator = SplitMix64(seed: 5)
        #expect(synthesizer.synthesize(real: photo, mask: mask, references: [], generator: &generator) == nil)
        // an empty mask gives nothing either
        var none = SplitMix64(seed: 5)
        #expect(
            CompositeSynthesizer().synthesize(
                real: photo, mask: PlanarImage(width: 48, height: 36, channels: 1), references: [], generator: &none)
                == nil)
    }

    /// Realistic difficulty: the composite is the whole change scaled toward the real image so that
    /// its fMSE (at the image's own size here) is the drawn target, or the whole change when that
    /// falls short of the target.
    @Test func realisticDifficultyScalesTheChangeToTheTargetFMSE() throws {
        let (photo, mask) = proceduralPhoto(seed: 7)
        var synthesizer = CompositeSynthesizer()
        synthesizer.targetDifficulty.measurementSize = nil
        var scaled = 0
        for seed in 0..<24 {
            var generator = SplitMix64(seed: UInt64(seed))
            let made = try #require(
                synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &generator))
            let target = try #require(made.targetFMSE)
            let scale = try #require(made.adjustment.changeScale)
            let measured = compositeFMSE(composite: made.composite, real: photo, mask: mask, size: nil)
            #expect(abs(measured - made.foregroundMSE) <= 1e-3 * max(1, measured), "seed \(seed)")
            if scale < 1 {
                scaled += 1
                #expect(abs(measured - target) <= 1e-3 * max(1, target), "seed \(seed): \(measured) vs \(target)")
            } else {
                #expect(measured <= target * (1 + 1e-3), "seed \(seed): the whole change falls short")
                #expect(made.attempts == synthesizer.searchDraws)
            }
            // the composite is real + scale * (the whole change): redo the accepted draw by hand
            var whole = synthesizer
            whole.difficulty = .legacy
            whole.minimumChange = 0
            var adjustment = made.adjustment
            adjustment.changeScale = nil
            let changed = whole.blend(changed: whole.apply(adjustment, to: photo, mask: mask), real: photo, mask: mask)
            for i in stride(from: 0, to: photo.values.count, by: 7) {
                let expected = photo.values[i] + scale * (changed.values[i] - photo.values[i])
                #expect(abs(made.composite.values[i] - expected) < 1e-5)
            }
        }
        #expect(scaled >= 12)
    }

    @Test func untouchedCompositesEqualTheRealImage() throws {
        let (photo, mask) = proceduralPhoto(seed: 8)
        var synthesizer = CompositeSynthesizer()
        synthesizer.targetDifficulty.nearIdentityShare = 1
        synthesizer.targetDifficulty.nearIdentityFMSE = 0...0
        var generator = SplitMix64(seed: 2)
        let made = try #require(
            synthesizer.synthesize(real: photo, mask: mask, references: references, generator: &generator))
        #expect(made.composite == photo && made.foregroundMSE == 0 && made.change == 0)
        #expect(made.targetFMSE == 0 && made.adjustment.changeScale == 0)
    }

    /// The target distribution itself: iHarmony4's test-set bands within 2 points, median about 900.
    @Test func targetDifficultyFollowsIHarmony4Bands() throws {
        var generator = SplitMix64(seed: 42)
        let draws = (0..<40_000).map { _ in TargetDifficulty().draw(&generator) }
        let histogram = DifficultyHistogram(fmse: draws)
        for band in CompositeDifficultyBand.allCases {
            let share = Double(histogram.count(band)) / Double(draws.count)
            #expect(abs(share - band.iHarmony4Share) < 0.02, "\(band.rawValue): \(share)")
        }
        let median = try #require(histogram.medianFMSE)
        #expect(median > 850 && median < 1000, "median \(median)")
        #expect(abs(Double(draws.filter { $0 <= 30 }.count) / Double(draws.count) - 0.02) < 0.005)
        #expect(draws.allSatisfy { $0 >= 1 })
    }

    @Test func compositeFMSEMatchesTheEvaluatorDefinition() {
        // a flat 4x4 image, foreground = the left half, composite 10 levels brighter there
        let real = PlanarImage(width: 4, height: 4, channels: 3, values: [Float](repeating: 0.5, count: 48))
        var mask = PlanarImage(width: 4, height: 4, channels: 1)
        var composite = real
        for y in 0..<4 {
            for x in 0..<2 {
                mask[0, y, x] = 1
                for c in 0..<3 { composite[c, y, x] = 0.5 + 10 / 255 }
            }
        }
        #expect(abs(compositeFMSE(composite: composite, real: real, mask: mask, size: nil) - 100) < 1e-3)
        #expect(compositeFMSE(composite: real, real: real, mask: mask) == 0)
        // resized to 8x8 the flat halves stay flat: still 100 away from the edge's soft weights
        let resized = compositeFMSE(composite: composite, real: real, mask: mask, size: 8)
        #expect(resized > 50 && resized <= 100.001)
    }

    @Test func colorTransferMovesForegroundStatisticsToTheReference() throws {
        let (photo, mask) = proceduralPhoto(seed: 6)
        var synthesizer = CompositeSynthesizer()
        synthesizer.familyWeights = [.colorTransfer: 1]
        synthesizer.transferStrength = 1...1
        synthesizer.difficulty = .legacy
        synthesizer.edgeSigma = 0
        var generator = SplitMix64(seed: 1)
        let made = try #require(
            synthesizer.synthesize(real: photo, mask: mask, references: [references[0]], generator: &generator))
        let after = try #require(ForegroundStatistics.measure(name: "after", photo: made.composite, mask: mask))
        for c in 0..<3 {
            #expect(
                abs(after.mean[c] - references[0].mean[c]) < 1.5, "channel \(c): \(after.mean) vs \(references[0].mean)"
            )
        }
    }

    @Test func holdoutListMatchesFoldersNamesAndFlatNames() {
        let list = HoldoutList(patterns: [
            "louis-braille", "categorization/fishes", "tuxpaint/space/", "exact-name", "*.vehicles__*",
        ])
        #expect(list.matches("gcompris/louis-braille/x"))
        #expect(list.matches("louis-braille__braille1"))
        #expect(list.matches("categorization.fishes__fish1"))
        #expect(!list.matches("categorization.fishesX__fish1"))
        #expect(!list.matches("categorization.tools__hammer"))
        #expect(list.matches("tuxpaint.space__rocket"))
        #expect(list.matches("photos/exact-name"))
        #expect(list.matches("tuxpaint.vehicles__car"))
        #expect(HoldoutList.sourcePath("categorization.fishes__fish1") == "categorization/fishes/fish1")
    }
}

@Suite struct SynthesisDatasetTests {
    /// Writes procedural photos under photos/<folder>/ and masks under masks/<folder>/.
    func makeSources(in folder: URL) throws -> (photos: URL, masks: URL) {
        let photos = folder.appendingPathComponent("photos"), masks = folder.appendingPathComponent("masks")
        for (index, relative) in [
            "animals/cat", "animals/dog", "tools/hammer", "tools/saw", "space/rocket", "space/moon",
        ].enumerated() {
            let (photo, mask) = proceduralPhoto(width: 32, height: 24, seed: UInt64(index))
            for root in [photos, masks] {
                try FileManager.default.createDirectory(
                    at: root.appendingPathComponent(relative).deletingLastPathComponent(),
                    withIntermediateDirectories: true)
            }
            try ImageFile.write(photo, to: photos.appendingPathComponent(relative + ".png"))
            try ImageFile.write(mask, to: masks.appendingPathComponent(relative + (index == 1 ? ".jpg" : ".png")))
        }
        // a photo without a mask is skipped
        try ImageFile.write(
            proceduralPhoto(width: 8, height: 8, seed: 9).photo, to: photos.appendingPathComponent("animals/lonely.png")
        )
        return (photos, masks)
    }

    @Test func sameSeedSameDatasetAndItLoads() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (photos, masks) = try makeSources(in: folder)
        var options = SynthesisOptions()
        options.perPhoto = 2
        options.seed = 3
        options.name = "HTest"
        options.testFraction = 0.34
        let first = folder.appendingPathComponent("one"), second = folder.appendingPathComponent("two")
        let summary = try DatasetSynthesis.run(photos: photos, masks: masks, output: first, options: options)
        _ = try DatasetSynthesis.run(photos: photos, masks: masks, output: second, options: options)
        #expect(summary.photosFound == 7 && summary.skipped.count == 1 && summary.skipped["animals/lonely"] != nil)
        #expect(summary.testPhotos == 2 && summary.trainPhotos == 4)
        #expect(summary.trainComposites + summary.testComposites + summary.failedComposites == 12)

        let files = try FileManager.default.subpathsOfDirectory(atPath: first.path).filter {
            !$0.hasSuffix("synthesis.json")
        }.sorted()
        #expect(
            files
                == (try FileManager.default.subpathsOfDirectory(atPath: second.path).filter {
                    !$0.hasSuffix("synthesis.json")
                }.sorted()))
        for file in files where file.contains(".") {
            #expect(
                FileManager.default.contents(atPath: first.appendingPathComponent(file).path)
                    == FileManager.default.contents(atPath: second.appendingPathComponent(file).path), "\(file)")
        }
        let train = try HarmonizationDataset(root: first, split: .train)
        let test = try HarmonizationDataset(root: first, split: .test)
        #expect(train.count == summary.trainComposites && test.count == summary.testComposites)
        // split by whole photos: no real image is in both splits
        #expect(Set(train.samples.map(\.real)).isDisjoint(with: Set(test.samples.map(\.real))))
        let sample = try train.load(0)
        #expect(sample.width == 32 && sample.height == 24)
        #expect(Set(sample.mask.values) == [0, 1])
    }

    @Test func holdoutFoldersGoToTheTestSplit() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (photos, masks) = try makeSources(in: folder)
        let listFile = folder.appendingPathComponent("holdout.txt")
        try Data("# held-out source folders\nspace\n".utf8).write(to: listFile)
        var options = SynthesisOptions()
        options.perPhoto = 1
        options.name = "HHold"
        options.format = .png
        options.holdout = try HoldoutList(contentsOf: listFile)
        let output = folder.appendingPathComponent("out")
        let summary = try DatasetSynthesis.run(photos: photos, masks: masks, output: output, options: options)
        #expect(summary.testPhotos == 2)
        let test = try HarmonizationDataset(root: output, split: .test)
        #expect(test.samples.allSatisfy { $0.name.hasPrefix("space-") && $0.composite.pathExtension == "png" })
    }

    @Test func includeAndExcludeListsChooseThePhotosAndTheHistogramIsRecorded() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (photos, masks) = try makeSources(in: folder)
        var options = SynthesisOptions()
        options.perPhoto = 3
        options.name = "HPick"
        options.testFraction = 0
        options.include = HoldoutList(patterns: ["animals", "tools"])
        options.exclude = HoldoutList(patterns: ["tools/saw"])
        let output = folder.appendingPathComponent("out")
        let summary = try DatasetSynthesis.run(photos: photos, masks: masks, output: output, options: options)
        #expect(summary.trainPhotos == 3 && summary.testPhotos == 0)
        #expect(summary.skipped["space/rocket"] != nil && summary.skipped["tools/saw"] != nil)
        let histogram = try #require(summary.difficulty["train"])
        #expect(histogram.total == summary.trainComposites)
        #expect(CompositeDifficultyBand.allCases.map { histogram.count($0) }.reduce(0, +) == histogram.total)
        let table = try String(contentsOf: output.appendingPathComponent("difficulty.tsv"), encoding: .utf8)
        #expect(table.hasPrefix("split\tband\tcount\tshare\tiharmony4_share\n"))
        #expect(table.contains("train\t<300\t\(histogram.count(.below300))\t"))
        // the recorded fMSE of each composite is the evaluator's at 256x256 (up to JPEG rounding)
        let manifest = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("synthesis.json")))
                as? [String: Any])
        let records = try #require(manifest["composites"] as? [[String: Any]])
        #expect(records.count == summary.trainComposites && records.allSatisfy { $0["fmse"] is Double })
    }
}
