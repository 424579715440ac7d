import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

// One harmonize path (issue 23): `gknet evaluate` measures what `gknet harmonize` writes, the
// library's entry points (files, encoded data, planar images) agree with each other, and bad
// inputs are typed errors.
@testable import GKNetDatasets
@testable import GKNetEvaluation
@testable import GKNetInference

@Suite struct OneHarmonizePathTests {
    /// A folder holding a tiny learned-blend model (random head and blend: its output changes the
    /// background unless the harmonize path restores it) and a one-image iHarmony4 subset.
    private struct Fixture {
        let folder: URL
        let model: URL
        let subset: URL

        init(width: Int, height: Int) throws {
            folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-path-\(UUID().uuidString)")
            subset = folder.appendingPathComponent("Tiny")
            for name in ["composite_images", "masks", "real_images"] {
                try FileManager.default.createDirectory(
                    at: subset.appendingPathComponent(name), withIntermediateDirectories: true)
            }
            var configuration = try GKNetConfiguration.preset("tiny")
            configuration.inputSize = 32
            configuration.outputBlend = .learned
            configuration.output = .image
            let network = try GKNet(configuration: configuration, seed: 9)
            var generator = SplitMix64(seed: 9)
            for (name, parameter) in network.namedParameters() where name.hasPrefix("head.") || name.hasPrefix("blend.")
            {
                parameter.data = (0..<parameter.count).map { _ in 0.2 * (2 * generator.nextUniform() - 1) }
            }
            model = folder.appendingPathComponent("learned.safetensors")
            try Checkpoint.save(network, to: model, configuration: network.configuration)

            var composite = PlanarImage(width: width, height: height, channels: 3)
            var mask = PlanarImage(width: width, height: height, channels: 1)
            for y in 0..<height {
                for x in 0..<width {
                    for c in 0..<3 {
                        composite[c, y, x] = 0.2 + 0.5 * (Float(x) + Float(c * y)) / Float(width + c * height)
                    }
                    if x >= width / 4 && x < 3 * width / 4 && y >= height / 3 && y < 5 * height / 6 {
                        mask[0, y, x] = 1
                    }
                }
            }
            try ImageFile.write(composite, to: subset.appendingPathComponent("composite_images/photo_1_1.png"))
            try ImageFile.write(mask, to: subset.appendingPathComponent("masks/photo_1.png"))
            try ImageFile.write(composite, to: subset.appendingPathComponent("real_images/photo.png"))
            try "photo_1_1.png\n".write(
                to: subset.appendingPathComponent("Tiny_test.txt"), atomically: true, encoding: .utf8)
        }

        var composite: URL { subset.appendingPathComponent("composite_images/photo_1_1.png") }
        var mask: URL { subset.appendingPathComponent("masks/photo_1.png") }
        func remove() { try? FileManager.default.removeItem(at: folder) }
    }

    /// The evaluator's prediction for the fixture's image, quantized like the written PNG.
    private func evaluatorPixels(_ fixture: Fixture, resolution: EvaluationResolution) throws -> [UInt8] {
        let dataset = try HarmonizationDataset(root: fixture.subset, split: .test)
        var options = EvaluationOptions()
        options.resolution = resolution
        var sample = try dataset.load(0)
        if case .fixed(let size) = resolution {
            sample = sample.mapImages { $0.resized(width: size, height: size, filter: options.filter) }
        }
        let harmonizer = try ModelLoading.harmonizer(path: fixture.model.path)
        let prediction = try predict(source: .model(harmonizer), sample: sample, options: options)
        // the report itself runs through the same call
        _ = try evaluate(dataset: dataset, source: .model(harmonizer), options: options)
        return prediction.raster8().samples
    }

    @Test(arguments: [(48, 40), (32, 32)])
    func evaluateMeasuresWhatHarmonizeWrites(width: Int, height: Int) throws {
        let fixture = try Fixture(width: width, height: height)
        defer { fixture.remove() }
        let output = fixture.folder.appendingPathComponent("out.png")
        let harmonizer = try ModelLoading.harmonizer(path: fixture.model.path)
        _ = try HarmonizeJob.run(
            HarmonizeRequest(composite: fixture.composite, mask: fixture.mask, output: output), harmonizer: harmonizer)
        guard case .eightBit(let written) = try ImageFile.read(output) else {
            Issue.record("expected an 8-bit PNG")
            return
        }
        let resolution: EvaluationResolution = width == 32 && height == 32 ? .fixed(32) : .full
        let evaluated = try evaluatorPixels(fixture, resolution: resolution)
        #expect(written.samples == evaluated, "evaluate and harmonize differ at \(width)x\(height)")
        // the background is the composite's (the learned blend alone would change it)
        guard case .eightBit(let composite) = try ImageFile.read(fixture.composite),
            case .eightBit(let mask) = try ImageFile.read(fixture.mask)
        else { return }
        var foregroundChanged = false
        for p in 0..<(width * height) {
            for c in 0..<3 {
                if mask.samples[p] == 0 {
                    #expect(written.samples[p * 3 + c] == composite.samples[p * 3 + c])
                } else if written.samples[p * 3 + c] != composite.samples[p * 3 + c] {
                    foregroundChanged = true
                }
            }
        }
        #expect(foregroundChanged)
    }

    @Test func filesDataAndPlanesGiveTheSameResult() throws {
        let fixture = try Fixture(width: 48, height: 40)
        defer { fixture.remove() }
        let harmonizer = try Harmonizer.load(contentsOf: fixture.model)
        let output = fixture.folder.appendingPathComponent("file.png")
        let report = try harmonizer.harmonize(compositeFile: fixture.composite, maskFile: fixture.mask, output: output)
        #expect(report.width == 48 && report.height == 40)
        let (data, warnings) = try harmonizer.harmonize(
            compositeData: try Data(contentsOf: fixture.composite), maskData: try Data(contentsOf: fixture.mask))
        #expect(warnings.isEmpty)
        #expect(try ImageFile.decode(data, path: "data") == ImageFile.read(output))
        let planes = try harmonizer.harmonize(
            composite: ImageFile.readRGB(fixture.composite), mask: ImageFile.readMask(fixture.mask, source: .automatic))
        #expect(DecodedImage.eightBit(planes.raster8()) == (try ImageFile.read(output)))
        // options are values: another method for one call leaves the harmonizer as it was
        let before = harmonizer.method
        _ = try harmonizer.harmonize(
            composite: ImageFile.readRGB(fixture.composite), mask: ImageFile.readMask(fixture.mask),
            options: Harmonizer.Options(method: .naiveUpsampling))
        #expect(harmonizer.method == before)
    }

    @Test func badInputsAreTypedErrors() throws {
        let fixture = try Fixture(width: 48, height: 40)
        defer { fixture.remove() }
        let harmonizer = try Harmonizer.load(contentsOf: fixture.model)
        let composite = PlanarImage(width: 8, height: 8, channels: 3, repeating: 0.5)
        #expect(throws: HarmonizeError.self) {
            try harmonizer.harmonize(composite: composite, mask: PlanarImage(width: 9, height: 8, channels: 1))
        }
        #expect(throws: HarmonizeError.self) {
            try harmonizer.harmonize(composite: composite, mask: PlanarImage(width: 8, height: 8, channels: 3))
        }
        #expect(throws: ImageCodecError.self) {
            try harmonizer.harmonize(compositeData: Data([1, 2, 3]), maskData: Data([4, 5, 6]))
        }
        #expect(throws: CheckpointError.self) {
            try Harmonizer.load(contentsOf: fixture.folder.appendingPathComponent("missing.safetensors"))
        }
    }

    @Test func theBundledModelIsAPackageResource() throws {
        let resources = ModelLoading.defaultModelCandidates().filter {
            $0.deletingLastPathComponent().lastPathComponent.hasSuffix(".resources")
                && FileManager.default.fileExists(atPath: $0.path)
        }
        #expect(!resources.isEmpty, "no resource bundle with the default model beside the test binary")
        if let resource = resources.first {
            let identity = try ModelIdentity(url: resource)
            #expect(identity.imagesSeen != nil && identity.sha256.count == 64)
            _ = try Harmonizer.load(contentsOf: resource)
        }
    }

    @Test func sha256MatchesTheStandardVectors() {
        #expect(
            SHA256.hex(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hex(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
