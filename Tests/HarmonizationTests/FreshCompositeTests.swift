import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

// Fresh composites while training: the loader's composites are a pure function of
// (seed, epoch, index), region masks, the multi-resolution schedule, and a resumed fresh-composite
// run that equals an uninterrupted one bit for bit.
@testable import GKNetDatasets
@testable import GKNetInference
@testable import GKNetSynthesis
@testable import GKNetTraining

private let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples")

/// The 4 bundled sample photos with their masks, laid out as `gknet train --photos/--masks` wants
/// them (same relative name in both folders).
private func photoFolders(_ name: String) throws -> (root: URL, photos: URL, masks: URL) {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-tests-\(name)-\(UUID().uuidString)")
    let photos = root.appendingPathComponent("photos"), masks = root.appendingPathComponent("masks")
    for folder in [photos, masks] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }
    for id in ["bucket", "moose", "panda", "solar-cooker"] {
        try FileManager.default.copyItem(
            at: samples.appendingPathComponent("HGCompris/real_images/\(id).jpg"),
            to: photos.appendingPathComponent("\(id).jpg"))
        try FileManager.default.copyItem(
            at: samples.appendingPathComponent("HGCompris/masks/\(id)_1.png"),
            to: masks.appendingPathComponent("\(id).png"))
    }
    return (root, photos, masks)
}

private func freshLoader(_ photos: PhotoCollection, seed: UInt64 = 5, prefetch: Bool = true, parallel: Bool = true)
    -> BatchLoader
{
    let transform = FreshCompositeTransform(
        crop: TrainingAugmentation(width: 32, height: 32), references: photos.statistics,
        globalChangeProbability: 0.5, regionMaskProbability: 0.5)
    return BatchLoader(
        dataset: photos, transform: transform,
        options: LoaderOptions(
            batchSize: 2, seed: seed, shuffle: true, dropLast: true, prefetch: prefetch, parallelDecode: parallel))
}

private func values(_ batch: Batch) -> [[Float]] { [batch.composites.data, batch.masks.data, batch.targets.data] }

@Suite struct FreshCompositeTests {
    @Test func compositesArePureFunctionsOfSeedEpochAndIndex() throws {
        let folders = try photoFolders("pure")
        defer { try? FileManager.default.removeItem(at: folders.root) }
        let photos = try PhotoCollection(
            settings: FreshCompositeSettings(photos: folders.photos.path, masks: folders.masks.path))
        #expect(photos.count == 4)
        // 3 epochs of 2 batches: with and without prefetch / parallel decoding, all equal
        let a = freshLoader(photos), b = freshLoader(photos, prefetch: false, parallel: false)
        var first: [[[Float]]] = []
        for _ in 0..<6 {
            let x = try #require(try a.next()), y = try #require(try b.next())
            #expect(values(x) == values(y))
            first.append(values(x))
        }
        // a loader restored at (epoch 2, position 2) delivers the 6th batch again
        let restored = freshLoader(photos)
        restored.restore(LoaderState(epoch: 2, position: 2))
        #expect(values(try #require(try restored.next())) == first[5])
        // the same photo gets a new composite in another epoch, and another seed changes everything
        let epoch0 = Set(first[0..<2].map { $0[0] }), epoch1 = Set(first[2..<4].map { $0[0] })
        #expect(epoch0.isDisjoint(with: epoch1))
        let other = freshLoader(photos, seed: 6)
        #expect(values(try #require(try other.next())) != first[0])
    }

    @Test func decodedPhotosKeptInMemoryChangeNothing() throws {
        let folders = try photoFolders("cache")
        defer { try? FileManager.default.removeItem(at: folders.root) }
        var settings = FreshCompositeSettings(photos: folders.photos.path, masks: folders.masks.path)
        let kept = try PhotoCollection(settings: settings)
        settings.cacheMegabytes = 0
        let decoded = try PhotoCollection(settings: settings)
        // measuring the photos filled the cache with every photo; without budget, nothing
        #expect(kept.cache.usage.items == kept.count && decoded.cache.usage.items == 0)
        let a = freshLoader(kept), b = freshLoader(decoded)
        for _ in 0..<4 { #expect(values(try #require(try a.next())) == values(try #require(try b.next()))) }
        // a kept photo is still read under the loader's limits, as decoding it would be
        let tight = DecodeLimits(maximumPixels: 16)
        #expect(throws: ImageCodecError.self) { try kept.load(0, limits: tight) }
        #expect(throws: ImageCodecError.self) { try decoded.load(0, limits: tight) }
        // kept photos read back even when their files are gone
        let sample = try kept.load(1, limits: DecodeLimits())
        try FileManager.default.removeItem(at: kept.sources[1].photo)
        #expect(try kept.load(1, limits: DecodeLimits()).composite.values == sample.composite.values)
        #expect(throws: (any Error).self) { try decoded.load(1, limits: DecodeLimits()) }
        settings.cacheMegabytes = -1
        #expect(throws: ConfigurationError.self) { try PhotoCollection(settings: settings) }
    }

    @Test func memoryBudgetCacheKeepsWhatFitsAndNeverEvicts() {
        let cache = MemoryBudgetCache<[Int]>(budgetBytes: 100)
        #expect(cache.keep([1], for: "a", bytes: 60))
        #expect(!cache.keep([2], for: "b", bytes: 50))  // would pass the budget
        #expect(cache.keep([3], for: "c", bytes: 40))
        #expect(cache.keep([4], for: "a", bytes: 10))  // already kept: unchanged
        #expect(cache.value(for: "a") == [1] && cache.value(for: "b") == nil && cache.value(for: "c") == [3])
        #expect(cache.usage.items == 2 && cache.usage.bytes == 100)
        let none = MemoryBudgetCache<Int>(budgetBytes: 0)
        #expect(!none.keep(1, for: "x", bytes: 1) && none.value(for: "x") == nil)
    }

    @Test func compositeDiffersFromTargetOnlyInsideTheMask() throws {
        let folders = try photoFolders("inside")
        defer { try? FileManager.default.removeItem(at: folders.root) }
        let photos = try PhotoCollection(
            settings: FreshCompositeSettings(photos: folders.photos.path, masks: folders.masks.path))
        let transform = FreshCompositeTransform(
            crop: TrainingAugmentation(width: 48, height: 48), references: photos.statistics,
            globalChangeProbability: 1, regionMaskProbability: 0)
        var changed = 0
        for index in 0..<photos.count {
            var generator = DerivedSeed.generator(1, 0, UInt64(index))
            let sample = transform.apply(to: try photos.load(index, limits: DecodeLimits()), generator: &generator)
            #expect(sample.mask.values.allSatisfy { $0 == 0 || $0 == 1 })
            // far from the mask (the edge is softened by a 1-pixel Gaussian) composite == target
            let dilated = sample.mask.values.indices.map { p -> Bool in
                let (y, x) = (p / 48, p % 48)
                for dy in -4...4 {
                    for dx in -4...4 {
                        let (yy, xx) = (y + dy, x + dx)
                        if yy >= 0 && yy < 48 && xx >= 0 && xx < 48 && sample.mask.values[yy * 48 + xx] > 0 {
                            return true
                        }
                    }
                }
                return false
            }
            for c in 0..<3 {
                for p in 0..<(48 * 48) where !dilated[p] {
                    #expect(abs(sample.composite.values[c * 2304 + p] - sample.target.values[c * 2304 + p]) < 1e-6)
                }
            }
            if sample.composite.values != sample.target.values { changed += 1 }
        }
        #expect(changed == photos.count)
    }

    @Test func regionMasksAreSmoothBinaryRegionsOfBoundedSize() {
        for seed in 0..<20 {
            var generator = SplitMix64(seed: UInt64(seed))
            let mask = FreshCompositeTransform.regionMask(width: 64, height: 48, generator: &generator)
            #expect(mask.width == 64 && mask.height == 48 && mask.channels == 1)
            #expect(mask.values.allSatisfy { $0 == 0 || $0 == 1 })
            let fraction = mask.values.reduce(0, +) / Float(mask.values.count)
            #expect(fraction >= 0.03 && fraction <= 0.6, "seed \(seed): fraction \(fraction)")
        }
    }

    @Test func excludedAndUnmaskedPhotosAreSkipped() throws {
        let folders = try photoFolders("exclude")
        defer { try? FileManager.default.removeItem(at: folders.root) }
        try FileManager.default.removeItem(at: folders.masks.appendingPathComponent("panda.png"))
        let list = folders.root.appendingPathComponent("exclude.txt")
        try Data("moose\n".utf8).write(to: list)
        var settings = FreshCompositeSettings(photos: folders.photos.path, masks: folders.masks.path)
        settings.exclude = list.path
        let photos = try PhotoCollection(settings: settings)
        #expect(photos.sources.map(\.relativePath) == ["bucket", "solar-cooker"])
        #expect(photos.skipped.keys.sorted() == ["moose", "panda"])
        settings.photos = folders.root.appendingPathComponent("missing").path
        #expect(throws: DatasetError.self) { try PhotoCollection(settings: settings) }
    }

    @Test func multiResolutionScheduleSwitchesSizeAtTheFraction() throws {
        let configuration = try TrainingConfiguration.decode(
            Data(#"{"input_size": 64, "low_resolution_size": 32, "low_resolution_fraction": 0.75, "steps": 8}"#.utf8))
        #expect(
            (0..<8).map { configuration.trainingSize(atStep: $0, totalSteps: 8) } == [32, 32, 32, 32, 32, 32, 64, 64])
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"input_size": 64, "low_resolution_size": 40}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(
                Data(#"{"synthesis": {"photos": "a", "masks": "b", "region_mask_probabilty": 0.5}}"#.utf8))
        }
    }

    @Test func resumedFreshCompositeRunEqualsUninterruptedRunBitForBit() throws {
        let folders = try photoFolders("resume")
        defer { try? FileManager.default.removeItem(at: folders.root) }
        let configuration = try TrainingConfiguration.decode(
            Data(
                """
                {"preset": "tiny", "output": "residual", "input_size": 32, "batch_size": 2, "steps": 6,
                 "validation_interval": 0, "checkpoint_interval": 2, "log_interval": 100, "warmup_steps": 2, "seed": 3,
                 "low_resolution_size": 16, "low_resolution_fraction": 0.5,
                 "synthesis": {"photos": "\(folders.photos.path)", "masks": "\(folders.masks.path)",
                               "region_mask_probability": 0.5}}
                """.utf8))
        let straight = folders.root.appendingPathComponent("straight"),
            interrupted = folders.root.appendingPathComponent("interrupted")
        _ = try Trainer(configuration: configuration, dataset: nil, runDirectory: straight, resume: false).run()
        var steps = 0
        let partial = try Trainer(configuration: configuration, dataset: nil, runDirectory: interrupted, resume: false)
            .run(shouldStop: {
                steps += 1
                return steps >= 3
            })
        #expect(partial.interrupted && partial.lastStep == 3)
        let finished = try Trainer(configuration: nil, dataset: nil, runDirectory: interrupted, resume: true).run()
        #expect(finished.lastStep == 6)
        let expected = try TrainingHistory.read(from: straight.appendingPathComponent(RunDirectory.logFile)).entries
            .map(
                \.loss?.bitPattern)
        let actual = try TrainingHistory.read(from: interrupted.appendingPathComponent(RunDirectory.logFile)).entries
            .map(
                \.loss?.bitPattern)
        #expect(expected.count == 6 && expected == actual, "losses differ: \(expected) vs \(actual)")
        let a = try SafeTensorsFile(contentsOf: straight.appendingPathComponent(RunDirectory.lastCheckpoint))
        let b = try SafeTensorsFile(contentsOf: interrupted.appendingPathComponent(RunDirectory.lastCheckpoint))
        #expect(a.tensors.count == b.tensors.count)
        for (name, tensor) in a.tensors { #expect(b.tensors[name]?.values == tensor.values, "\(name) differs") }
        #expect(a.metadata[Trainer.loaderKey] == b.metadata[Trainer.loaderKey])
    }
}

@Suite struct OutputHeadTests {
    /// A model whose head is random (the identity heads start at zero).
    private func model(_ output: OutputHead, seed: UInt64 = 4) throws -> GKNet {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.inputSize = 32
        configuration.output = output
        let network = try GKNet(configuration: configuration, seed: seed)
        var generator = SplitMix64(seed: seed)
        for (name, parameter) in network.namedParameters() where name.hasPrefix("head.") {
            parameter.data = (0..<parameter.count).map { _ in 0.05 * (2 * generator.nextUniform() - 1) }
        }
        network.eval()
        return network
    }

    private func inputs(seed: UInt64) -> (Tensor, Tensor) {
        var generator = SplitMix64(seed: seed)
        let composite = Tensor.uniform([1, 3, 32, 32], generator: &generator)
        var mask = [Float](repeating: 0, count: 32 * 32)
        for y in 8..<24 { for x in 6..<20 { mask[y * 32 + x] = 1 } }
        mask[7 * 32 + 10] = 0.5
        return (composite, Tensor(shape: [1, 1, 32, 32], data: mask))
    }

    @Test(arguments: [OutputHead.residual, .affine])
    func identityHeadsReturnTheCompositeAtInitialisation(output: OutputHead) throws {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.inputSize = 32
        configuration.output = output
        let network = try GKNet(configuration: configuration, seed: 9)
        #expect(
            network.namedParameters().filter { $0.0.hasPrefix("head.") }.allSatisfy { $0.1.data.allSatisfy { $0 == 0 } }
        )
        let (composite, mask) = inputs(seed: 1)
        for training in [true, false] {
            if training { network.train() } else { network.eval() }
            let output = withoutGradient { network(composite: composite, mask: mask) }
            let worst = zip(output.data, composite.data).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-6, "\(output) head, training \(training): max |output - composite| \(worst)")
        }
    }

    @Test func colorTransformAppliesTheAffineMapPerPixel() {
        var generator = SplitMix64(seed: 3)
        let rgb = Tensor.uniform([2, 3, 2, 3], generator: &generator)
        let transform = Tensor.uniform([2, 12, 2, 3], generator: &generator)
        let out = GKNet.applyColorTransform(transform, to: rgb).data
        for n in 0..<2 {
            for p in 0..<6 {
                func t(_ channel: Int) -> Float { transform.data[(n * 12 + channel) * 6 + p] }
                func c(_ channel: Int) -> Float { rgb.data[(n * 3 + channel) * 6 + p] }
                for row in 0..<3 {
                    var expected = t(9 + row)
                    for column in 0..<3 { expected += ((row == column ? 1 : 0) + t(3 * column + row)) * c(column) }
                    #expect(abs(out[(n * 3 + row) * 6 + p] - expected) <= 1e-6)
                }
            }
        }
    }

    @Test func upsampledTransformAtTheNetworkSizeReproducesThePrediction() throws {
        let network = try model(.affine)
        let harmonizer = Harmonizer(model: network)
        #expect(harmonizer.method == .upsampledTransform)
        let (composite, mask) = inputs(seed: 2)
        let image = PlanarImage(tensor: composite), alpha = PlanarImage(tensor: mask)
        let prediction = harmonizer.predictWithTransforms(composites: [image], masks: [alpha])[0]
        let transform = try #require(prediction.transform)
        #expect(transform.channels == 12)
        // carried to the same size (a 1:1 "upsampling"), the transform gives the network's own output
        // (except at the soft mask pixel, where the network blends before clamping and this after)
        let carried = applyUpsampledColorTransform(transform, composite: image, mask: alpha)
        var worst: Float = 0
        for c in 0..<3 {
            for p in 0..<(32 * 32) where alpha.values[p] == 0 || alpha.values[p] == 1 {
                worst = max(worst, abs(carried.values[c * 1024 + p] - prediction.image.values[c * 1024 + p]))
            }
        }
        #expect(worst <= 1e-5, "max difference \(worst)")
        #expect(carried.values != image.values)
        // and at 2x the background stays exact while the foreground changes
        let big = image.resized(width: 64, height: 64, filter: .bilinear),
            bigMask = alpha.resized(width: 64, height: 64, filter: .bilinear)
        let result = try harmonizer.harmonize(composite: big, mask: bigMask)
        for p in 0..<(64 * 64) where bigMask.values[p] == 0 {
            for c in 0..<3 { #expect(result.values[c * 4096 + p] == big.values[c * 4096 + p]) }
        }
        #expect(result.values != big.values)
        #expect(Harmonizer(model: try model(.residual)).method == .localAffine)
    }
}
