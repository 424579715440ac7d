import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import Testing

// `gknet harmonize` through its library entry point (HarmonizeJob): every bad or unusual input
// (README "Usage") gives a one-line error naming the file or its documented behaviour, and a
// failure never leaves an output file behind. The model is a tiny random GKNet (no trained model needed).
@testable import GKNetDatasets
@testable import GKNetEvaluation
@testable import GKNetInference

/// A tiny random GKNet at 64x64, saved like a `gknet train` checkpoint and loaded once.
private enum TinyModel {
    static let harmonizer: Harmonizer = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-harmonize-model-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var configuration = try! GKNetConfiguration.preset("tiny")
        configuration.inputSize = 64
        let model = try! GKNet(configuration: configuration, seed: 5)
        let url = folder.appendingPathComponent("tiny.safetensors")
        try! Checkpoint.save(model, to: url, configuration: model.configuration)
        defer { try? FileManager.default.removeItem(at: folder) }
        return Harmonizer(model: try! ModelLoading.load(path: url.path))
    }()
}

/// A fresh folder with a 96x72 composite (smooth colours plus texture) and a binary mask (a box).
private struct Workspace {
    let folder: URL
    static let (width, height) = (96, 72)

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-harmonize-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    static func compositeImage(width: Int = width, height: Int = height) -> PlanarImage {
        var image = PlanarImage(width: width, height: height, channels: 3)
        for y in 0..<height {
            for x in 0..<width {
                let texture = Float((x * 7 + y * 13) % 11) / 60
                image[0, y, x] = 0.2 + 0.5 * Float(x) / Float(width) + texture
                image[1, y, x] = 0.3 + 0.4 * Float(y) / Float(height)
                image[2, y, x] = 0.6 - 0.3 * Float(x + y) / Float(width + height) + texture / 2
            }
        }
        return image.clamped()
    }

    static func boxMask(width: Int = width, height: Int = height, value: Float = 1) -> PlanarImage {
        var mask = PlanarImage(width: width, height: height, channels: 1)
        for y in height / 4..<3 * height / 4 { for x in width / 3..<2 * width / 3 { mask[0, y, x] = value } }
        return mask
    }

    /// composite.png and mask.png (8-bit RGB and gray).
    func writeDefaults() throws -> (composite: URL, mask: URL) {
        try ImageFile.write(Self.compositeImage(), to: url("composite.png"))
        try ImageFile.write(Self.boxMask(), to: url("mask.png"))
        return (url("composite.png"), url("mask.png"))
    }

    /// The files in the folder (to show nothing was left behind).
    var files: Set<String> { Set((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []) }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// Runs a job that must fail; checks the error is one line naming `file`, and that no output appeared.
private func expectFailure(
    _ workspace: Workspace, _ request: HarmonizeRequest, options: HarmonizeOptions = HarmonizeOptions(),
    naming file: URL, containing phrase: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let before = workspace.files
    do {
        _ = try HarmonizeJob.run(request, harmonizer: TinyModel.harmonizer, options: options)
        Issue.record("expected a failure mentioning \"\(phrase)\"", sourceLocation: sourceLocation)
    } catch {
        let message = "\(error)"
        #expect(!message.contains("\n"), "not one line: \(message)", sourceLocation: sourceLocation)
        #expect(message.contains(file.path), "does not name \(file.path): \(message)", sourceLocation: sourceLocation)
        #expect(message.contains(phrase), "does not say \"\(phrase)\": \(message)", sourceLocation: sourceLocation)
    }
    #expect(
        workspace.files == before, "files left behind: \(workspace.files.subtracting(before))",
        sourceLocation: sourceLocation)
}

@Suite(.serialized) struct HarmonizeJobTests {
    // MARK: - The normal case

    @Test func writesTheCompositeSizeKeepsTheBackgroundAndChangesTheForeground() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        let report = try HarmonizeJob.run(
            HarmonizeRequest(composite: composite, mask: mask, comparison: workspace.url("sheet.png")),
            harmonizer: TinyModel.harmonizer)
        #expect(report.output == workspace.url("composite_harmonized.png"), "default output next to the composite")
        #expect(report.warnings.isEmpty, "\(report.warnings)")
        let output = try ImageFile.read(report.output)
        #expect(
            output.width == Workspace.width && output.height == Workspace.height && output.layout == .rgb
                && output.bitDepth == 8)
        let input = try ImageFile.read(composite)
        guard case .eightBit(let result) = output, case .eightBit(let original) = input else {
            Issue.record("not 8-bit")
            return
        }
        let maskImage = Workspace.boxMask()
        var changed = 0
        for y in 0..<Workspace.height {
            for x in 0..<Workspace.width {
                for c in 0..<3 {
                    if maskImage[0, y, x] == 0 {
                        #expect(result[x, y, c] == original[x, y, c], "background (\(x), \(y)) changed")
                    } else if result[x, y, c] != original[x, y, c] {
                        changed += 1
                    }
                }
            }
        }
        #expect(changed > 100, "the foreground should change (\(changed) samples did)")
        let sheet = try ImageFile.read(workspace.url("sheet.png"))
        #expect(
            sheet.width > 3 * Workspace.width && sheet.height > Workspace.height, "sheet \(sheet.width)x\(sheet.height)"
        )
    }

    @Test func everyFullResolutionMethodRunsOnALargerImage() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        try ImageFile.write(Workspace.compositeImage(width: 200, height: 150), to: workspace.url("big.png"))
        try ImageFile.write(Workspace.boxMask(width: 200, height: 150), to: workspace.url("big_mask.png"))
        let harmonizer = TinyModel.harmonizer
        let composite = try ImageFile.readRGB(workspace.url("big.png")),
            mask = try ImageFile.readMask(workspace.url("big_mask.png"))
        var foregrounds: [FullResolutionMethod: [Float]] = [:]
        for method in FullResolutionMethod.allCases {
            var jobOptions = HarmonizeOptions()
            jobOptions.harmonization = Harmonizer.Options(method: method)
            let output = workspace.url("big_\(method.rawValue).png")
            _ = try HarmonizeJob.run(
                HarmonizeRequest(
                    composite: workspace.url("big.png"), mask: workspace.url("big_mask.png"), output: output),
                harmonizer: harmonizer, options: jobOptions)
            let result = try ImageFile.readRGB(output)
            #expect(result.width == 200 && result.height == 150, "\(method)")
            // The file holds the library's result for this method (8-bit rounding apart), ...
            let expected = try harmonizer.harmonize(
                composite: composite, mask: mask, options: Harmonizer.Options(method: method))
            let worst = zip(result.values, expected.values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(
                result.values.count == expected.values.count && worst <= 0.5 / 255 + 1e-6,
                "\(method): largest difference \(worst)")
            // ... the background is the composite's, and the foreground changed.
            var changed = 0
            for i in 0..<mask.planeSize {
                for c in 0..<3 {
                    let (out, original) = (
                        result.values[c * mask.planeSize + i], composite.values[c * mask.planeSize + i]
                    )
                    if mask.values[i] == 0 {
                        #expect(out == original, "\(method): background pixel \(i) changed")
                    } else if abs(out - original) > 1.5 / 255 {
                        changed += 1
                    }
                }
            }
            #expect(changed > 500, "\(method): only \(changed) foreground samples changed")
            foregrounds[method] = (0..<mask.planeSize).filter { mask.values[$0] > 0 }.flatMap { i in
                (0..<3).map { result.values[$0 * mask.planeSize + i] }
            }
        }
        #expect(foregrounds[.localAffine] != foregrounds[.naiveUpsampling], "the methods should differ")
    }

    // MARK: - Unreadable, corrupt, truncated, too large

    @Test func missingCorruptAndTruncatedImagesAreOneLineErrorsNamingTheFile() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        expectFailure(
            workspace, HarmonizeRequest(composite: workspace.url("absent.png"), mask: mask),
            naming: workspace.url("absent.png"), containing: "no such file")

        try Data((0..<500).map { UInt8(($0 * 37) % 251) }).write(to: workspace.url("noise.png"))
        expectFailure(
            workspace, HarmonizeRequest(composite: workspace.url("noise.png"), mask: mask),
            naming: workspace.url("noise.png"), containing: "not a PNG or JPEG")

        let png = try Data(contentsOf: composite)
        try png.prefix(png.count / 2).write(to: workspace.url("cut.png"))
        expectFailure(
            workspace, HarmonizeRequest(composite: workspace.url("cut.png"), mask: mask),
            naming: workspace.url("cut.png"), containing: "truncated")

        try ImageFile.write(Workspace.compositeImage(), to: workspace.url("photo.jpg"))
        let jpeg = try Data(contentsOf: workspace.url("photo.jpg"))
        try jpeg.prefix(jpeg.count * 2 / 3).write(to: workspace.url("cut.jpg"))
        expectFailure(
            workspace, HarmonizeRequest(composite: workspace.url("cut.jpg"), mask: mask),
            naming: workspace.url("cut.jpg"), containing: "truncated")

        let maskBytes = try Data(contentsOf: mask)
        try maskBytes.prefix(40).write(to: workspace.url("cut_mask.png"))
        expectFailure(
            workspace,
            HarmonizeRequest(
                composite: composite, mask: workspace.url("cut_mask.png"), output: workspace.url("out.png")),
            naming: workspace.url("cut_mask.png"), containing: "cut_mask.png")

        try FileManager.default.createDirectory(at: workspace.url("folder.png"), withIntermediateDirectories: true)
        expectFailure(
            workspace,
            HarmonizeRequest(composite: workspace.url("folder.png"), mask: mask, output: workspace.url("out.png")),
            naming: workspace.url("folder.png"), containing: "folder")
    }

    @Test func imagesOverThePixelLimitAreRefusedBeforeDecoding() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        var options = HarmonizeOptions()
        options.limits.maximumPixels = 5000  // the composite has 96 x 72 = 6912
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask), options: options, naming: composite,
            containing: "maximum-pixels")
        options.limits.maximumPixels = 6912
        _ = try HarmonizeJob.run(
            HarmonizeRequest(composite: composite, mask: mask), harmonizer: TinyModel.harmonizer, options: options)
    }

    // MARK: - Masks

    @Test func aMaskOfAnotherSizeIsAnErrorUnlessResizeMask() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, _) = try workspace.writeDefaults()
        try ImageFile.write(Workspace.boxMask(width: 48, height: 36), to: workspace.url("half.png"))
        let request = HarmonizeRequest(composite: composite, mask: workspace.url("half.png"))
        expectFailure(workspace, request, naming: workspace.url("half.png"), containing: "--resize-mask")
        var options = HarmonizeOptions()
        options.resizeMask = true
        let report = try HarmonizeJob.run(request, harmonizer: TinyModel.harmonizer, options: options)
        #expect(report.warnings.contains { $0.contains("resized") }, "\(report.warnings)")
        let output = try ImageFile.read(report.output)
        #expect(output.width == Workspace.width && output.height == Workspace.height)
    }

    @Test func aMaskWithoutForegroundIsAnError() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, _) = try workspace.writeDefaults()
        try ImageFile.write(Workspace.boxMask(value: 0), to: workspace.url("black.png"))
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: workspace.url("black.png")),
            naming: workspace.url("black.png"), containing: "no foreground")
    }

    @Test func aMaskCoveringEverythingWarnsAndStillRuns() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, _) = try workspace.writeDefaults()
        try ImageFile.write(
            PlanarImage(width: Workspace.width, height: Workspace.height, channels: 1, repeating: 1),
            to: workspace.url("white.png"))
        let report = try HarmonizeJob.run(
            HarmonizeRequest(composite: composite, mask: workspace.url("white.png")), harmonizer: TinyModel.harmonizer)
        #expect(
            report.warnings.count == 1 && report.warnings[0].contains("covers the whole image"), "\(report.warnings)")
        #expect(FileManager.default.fileExists(atPath: report.output.path))
    }

    @Test func aSoftMaskIsUsedAsAlphaNotThresholded() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // A flat composite; the mask is 1 on the left half of the box and 0.5 on the right half.
        let flat = PlanarImage(
            width: Workspace.width, height: Workspace.height, channels: 3,
            values: [Float](repeating: 0.3, count: Workspace.width * Workspace.height)
                + [Float](repeating: 0.6, count: Workspace.width * Workspace.height)
                + [Float](repeating: 0.45, count: Workspace.width * Workspace.height))
        try ImageFile.write(flat, to: workspace.url("flat.png"))
        var mask = Workspace.boxMask()
        let middle = Workspace.width / 2
        for y in 0..<Workspace.height {
            for x in middle..<Workspace.width where mask[0, y, x] > 0 { mask[0, y, x] = 128.0 / 255 }
        }
        try ImageFile.write(mask, to: workspace.url("soft.png"))
        let report = try HarmonizeJob.run(
            HarmonizeRequest(composite: workspace.url("flat.png"), mask: workspace.url("soft.png")),
            harmonizer: TinyModel.harmonizer)
        let result = PlanarImage(rgb: try ImageFile.read(report.output))
        // Beside the step, the full change T - c and the half-weighted one should be in ratio 128/255.
        let y = Workspace.height / 2
        var largest: Float = 0
        for c in 0..<3 {
            let full = result[c, y, middle - 1] - flat[c, y, middle - 1]
            let half = result[c, y, middle] - flat[c, y, middle]
            largest = max(largest, abs(full))
            #expect(
                abs(half - full * 128 / 255) <= 0.03, "channel \(c): change \(half) at alpha 0.5 vs \(full) at alpha 1")
        }
        #expect(largest > 0.02, "the tiny model should change the foreground (largest change \(largest))")
    }

    @Test func maskFileVariantsGiveTheSameMask() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        let reference = try HarmonizeJob.readInput(composite: composite, mask: mask).mask
        let box = Workspace.boxMask()
        // RGB white-on-black: used as is, no note.
        let rgb = PlanarImage(
            width: box.width, height: box.height, channels: 3, values: box.values + box.values + box.values)
        try ImageFile.write(rgb, to: workspace.url("rgb.png"))
        let fromRGB = try HarmonizeJob.readInput(composite: composite, mask: workspace.url("rgb.png"))
        #expect(fromRGB.mask == reference && fromRGB.warnings.isEmpty, "\(fromRGB.warnings)")
        // Red on black: the brightest channel, with a note.
        let zero = [Float](repeating: 0, count: box.planeSize)
        try ImageFile.write(
            PlanarImage(width: box.width, height: box.height, channels: 3, values: box.values + zero + zero),
            to: workspace.url("red.png"))
        let fromRed = try HarmonizeJob.readInput(composite: composite, mask: workspace.url("red.png"))
        #expect(fromRed.mask == reference && fromRed.warnings.contains { $0.contains("colour") }, "\(fromRed.warnings)")
        // A cut-out: white everywhere, the shape in the alpha channel.
        let ones = [Float](repeating: 1, count: box.planeSize)
        try ImageFile.write(
            PlanarImage(width: box.width, height: box.height, channels: 4, values: ones + ones + ones + box.values),
            to: workspace.url("cutout.png"))
        let fromAlpha = try HarmonizeJob.readInput(composite: composite, mask: workspace.url("cutout.png"))
        #expect(
            fromAlpha.mask == reference && fromAlpha.warnings.contains { $0.contains("alpha") }, "\(fromAlpha.warnings)"
        )
        // 16-bit gray.
        try ImageFile.write(box.raster16(), to: workspace.url("mask16.png"))
        #expect(try HarmonizeJob.readInput(composite: composite, mask: workspace.url("mask16.png")).mask == reference)
        // JPEG: ringing near black and white is snapped, so the background stays exact.
        try ImageFile.write(box, to: workspace.url("mask.jpg"), options: EncodeOptions(quality: 80))
        let fromJPEG = try HarmonizeJob.readInput(composite: composite, mask: workspace.url("mask.jpg")).mask
        let farFromEdge = (0..<box.planeSize).filter { i in
            let (y, x) = (i / box.width, i % box.width)
            return (0..<box.height).contains(y)
                && (y < box.height / 4 - 4 || y > 3 * box.height / 4 + 4 || x < box.width / 3 - 4
                    || x > 2 * box.width / 3 + 4)
        }
        #expect(farFromEdge.allSatisfy { fromJPEG.values[$0] == 0 }, "JPEG mask background not snapped to 0")
    }

    // MARK: - Composite variants

    @Test func grayRGBAAnd16BitCompositesKeepTheirFormat() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        let colour = Workspace.compositeImage()
        let box = Workspace.boxMask()
        // Gray: read as RGB, written as RGB; background pixels keep their gray value.
        try ImageFile.write(colour.plane(1), to: workspace.url("gray.png"))
        let grayReport = try HarmonizeJob.run(
            HarmonizeRequest(composite: workspace.url("gray.png"), mask: mask), harmonizer: TinyModel.harmonizer)
        guard case .eightBit(let gray) = try ImageFile.read(grayReport.output),
            case .eightBit(let grayInput) = try ImageFile.read(workspace.url("gray.png"))
        else {
            Issue.record("not 8-bit")
            return
        }
        #expect(gray.layout == .rgb)
        #expect(gray[0, 0, 2] == grayInput[0, 0, 0])
        // RGBA: the alpha channel is copied to the output unchanged.
        var alphaValues = [Float](repeating: 1, count: box.planeSize)
        for i in 0..<box.width { alphaValues[i] = 0.25 }
        try ImageFile.write(
            PlanarImage(width: box.width, height: box.height, channels: 4, values: colour.values + alphaValues),
            to: workspace.url("rgba.png"))
        let rgbaReport = try HarmonizeJob.run(
            HarmonizeRequest(composite: workspace.url("rgba.png"), mask: mask), harmonizer: TinyModel.harmonizer)
        guard case .eightBit(let rgba) = try ImageFile.read(rgbaReport.output) else {
            Issue.record("not 8-bit")
            return
        }
        #expect(rgba.layout == .rgba && rgba[3, 0, 3] == 64 && rgba[3, 5, 3] == 255)
        // 16-bit: written as 16-bit; background samples identical.
        try ImageFile.write(colour.raster16(), to: workspace.url("deep.png"))
        let deepReport = try HarmonizeJob.run(
            HarmonizeRequest(composite: workspace.url("deep.png"), mask: mask), harmonizer: TinyModel.harmonizer)
        guard case .sixteenBit(let deep) = try ImageFile.read(deepReport.output),
            case .sixteenBit(let deepInput) = try ImageFile.read(workspace.url("deep.png"))
        else {
            Issue.record("16-bit composite should give a 16-bit output")
            return
        }
        #expect(
            deep.samples.prefix(3 * box.width) == deepInput.samples.prefix(3 * box.width),
            "first row (background) changed")
        _ = composite
    }

    // MARK: - Output paths

    @Test func anOutputInAMissingFolderIsAnError() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        let output = workspace.url("no/such/folder/out.png")
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask, output: output), naming: output,
            containing: "does not exist")
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask, output: workspace.url("out.tiff")),
            naming: workspace.url("out.tiff"), containing: ".png")
    }

    @Test func anOutputEqualToAnInputIsAnErrorAndTheInputIsUntouched() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        let original = try Data(contentsOf: composite)
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask, output: composite), naming: composite,
            containing: "overwrite the input")
        // the same file through another spelling and through a symbolic link
        let spelled = workspace.folder.appendingPathComponent("./sub/../mask.png")
        try FileManager.default.createDirectory(at: workspace.url("sub"), withIntermediateDirectories: true)
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask, output: spelled), naming: spelled,
            containing: "overwrite the input")
        try FileManager.default.createSymbolicLink(at: workspace.url("link.png"), withDestinationURL: composite)
        expectFailure(
            workspace, HarmonizeRequest(composite: composite, mask: mask, output: workspace.url("link.png")),
            naming: workspace.url("link.png"), containing: "overwrite the input")
        expectFailure(
            workspace,
            HarmonizeRequest(composite: composite, mask: mask, output: workspace.url("out.png"), comparison: mask),
            naming: mask, containing: "overwrite the input")
        #expect(try Data(contentsOf: composite) == original)
    }

    @Test func aFailedComparisonSheetRemovesTheOutput() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let (composite, mask) = try workspace.writeDefaults()
        // the sheet's folder disappears between the path check and the write: simulate with finish()
        try FileManager.default.createDirectory(at: workspace.url("gone"), withIntermediateDirectories: true)
        let request = HarmonizeRequest(
            composite: composite, mask: mask, output: workspace.url("out.png"),
            comparison: workspace.url("gone/sheet.png"))
        try HarmonizeJob.checkPaths(request)
        try FileManager.default.removeItem(at: workspace.url("gone"))
        let input = try HarmonizeJob.readInput(composite: composite, mask: mask)
        var clock = StageClock()
        #expect(throws: (any Error).self) {
            try HarmonizeJob.finish(request, input: input, harmonizer: TinyModel.harmonizer, clock: &clock)
        }
        #expect(!FileManager.default.fileExists(atPath: workspace.url("out.png").path))
    }

    // MARK: - Batch

    @Test func batchWritesEveryGoodSampleAndReportsTheBadOnes() throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let subset = workspace.url("Sub")
        for folder in ["composite_images", "masks", "real_images"] {
            try FileManager.default.createDirectory(
                at: subset.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let names = ["a", "b", "c"]
        for (index, name) in names.enumerated() {
            let size = 64 + 16 * index
            let image = Workspace.compositeImage(width: size + 8, height: size)
            try ImageFile.write(image, to: subset.appendingPathComponent("real_images/\(name).jpg"))
            try ImageFile.write(
                Workspace.boxMask(width: size + 8, height: size),
                to: subset.appendingPathComponent("masks/\(name)_1.png"))
            try ImageFile.write(image, to: subset.appendingPathComponent("composite_images/\(name)_1_1.jpg"))
        }
        try Data("garbage".utf8).write(to: subset.appendingPathComponent("composite_images/b_1_1.jpg"))
        try Data("a_1_1.jpg\nb_1_1.jpg\nc_1_1.jpg\n".utf8).write(to: subset.appendingPathComponent("Sub_test.txt"))
        let dataset = try HarmonizationDataset(root: subset, split: .test)
        let output = workspace.url("out"), sheets = workspace.url("sheets")
        var progress: [Int] = []
        let summary = try HarmonizeJob.runBatch(
            dataset: dataset, outputDirectory: output, comparisonDirectory: sheets, harmonizer: TinyModel.harmonizer,
            progress: { done, _, _, _ in progress.append(done) })
        #expect(summary.total == 3 && summary.written == 2 && progress == [1, 2, 3])
        #expect(
            summary.failures.count == 1 && summary.failures[0].sample == "Sub/b_1_1.jpg"
                && summary.failures[0].message.contains("b_1_1.jpg"), "\(summary.failures)")
        let written = Set(try FileManager.default.contentsOfDirectory(atPath: output.path))
        #expect(written == ["a_1_1.png", "c_1_1.png"])
        let c = try ImageFile.read(output.appendingPathComponent("c_1_1.png"))
        #expect(c.width == 104 && c.height == 96)
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: sheets.path)) == ["a_1_1.png", "c_1_1.png"])
    }

    // MARK: - Full resolution

    /// Naive reference of `applyLocalAffineTransforms`: per pixel, bilinear weights of the four cells.
    static func referenceApply(
        _ transforms: [AffineColorTransform], gridSize g: Int, composite: PlanarImage, mask: PlanarImage
    ) -> PlanarImage {
        var result = composite
        func position(_ i: Int, _ size: Int) -> (Int, Int, Float) {
            let t = min(max((Float(i) + 0.5) / Float(size) * Float(g) - 0.5, 0), Float(g - 1))
            let lower = min(Int(t), g - 1)
            return (lower, min(lower + 1, g - 1), t - Float(lower))
        }
        for y in 0..<composite.height {
            let (y0, y1, fy) = position(y, composite.height)
            for x in 0..<composite.width {
                let (x0, x1, fx) = position(x, composite.width)
                let m = mask[0, y, x]
                for c in 0..<3 {
                    var value: Float = 0
                    for k in 0..<4 {
                        let a = transforms[y0 * g + x0][c * 4 + k], b = transforms[y0 * g + x1][c * 4 + k]
                        let d = transforms[y1 * g + x0][c * 4 + k], e = transforms[y1 * g + x1][c * 4 + k]
                        let coefficient = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * d + fx * e)
                        value += coefficient * (k == 3 ? 1 : composite[k, y, x])
                    }
                    result[c, y, x] = m * min(max(value, 0), 1) + (1 - m) * composite[c, y, x]
                }
            }
        }
        return result
    }

    @Test(arguments: [(37, 23, 3), (64, 48, 8), (5, 90, 4)])
    func localAffineApplicationMatchesTheNaiveReference(width: Int, height: Int, grid: Int) {
        var generator = SplitMix64(seed: UInt64(width * height))
        let composite = PlanarImage(tensor: Tensor.uniform([3, height, width], generator: &generator))
        var mask = PlanarImage(tensor: Tensor.uniform([1, height, width], generator: &generator))
        for i in mask.values.indices where mask.values[i] < 0.3 { mask.values[i] = 0 }  // background and soft values
        let transforms = (0..<grid * grid).map { _ in
            Tensor.uniform([12], generator: &generator).data.map { $0 * 1.2 - 0.3 }
        }
        let fast = applyLocalAffineTransforms(transforms, gridSize: grid, composite: composite, mask: mask)
        let reference = Self.referenceApply(transforms, gridSize: grid, composite: composite, mask: mask)
        let worst = zip(fast.values, reference.values).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-5, "largest difference \(worst)")
        for i in 0..<mask.planeSize where mask.values[i] == 0 {
            #expect(
                (0..<3).allSatisfy { fast.values[$0 * mask.planeSize + i] == composite.values[$0 * mask.planeSize + i] }
            )
        }
    }

    @Test func localAffineCarriesAGlobalColourChangeExactly() {
        // prediction = A c + t on the foreground at 64x64; the full-resolution result must be A c + t.
        let full = Workspace.compositeImage(width: 160, height: 120).resized(width: 160, height: 120)
        let fullMask = Workspace.boxMask(width: 160, height: 120)
        let small = full.resized(width: 64, height: 64, filter: .area),
            smallMask = fullMask.resized(width: 64, height: 64, filter: .area)
        let a: [Float] = [0.8, 0.1, 0, 0.05, 0, 0.9, 0.05, -0.02, 0.1, 0, 0.7, 0.1]
        func transform(_ image: PlanarImage, _ mask: PlanarImage) -> PlanarImage {
            var out = image
            for i in 0..<image.planeSize {
                for c in 0..<3 {
                    let v =
                        a[c * 4] * image.values[i] + a[c * 4 + 1] * image.values[image.planeSize + i] + a[c * 4 + 2]
                        * image.values[2 * image.planeSize + i] + a[c * 4 + 3]
                    out.values[c * image.planeSize + i] =
                        mask.values[i] * v + (1 - mask.values[i]) * image.values[c * image.planeSize + i]
                }
            }
            return out
        }
        let result = carryToFullResolution(
            method: .localAffine, composite: small, prediction: transform(small, smallMask), mask: smallMask,
            fullComposite: full, fullMask: fullMask)
        let expected = transform(full, fullMask)
        let worst = zip(result.values, expected.values).map { abs($0 - $1) }.max()!
        #expect(worst <= 0.01, "largest difference \(worst) (1/255 = 0.0039)")
        let naive = carryToFullResolution(
            method: .naiveUpsampling, composite: small, prediction: transform(small, smallMask), mask: smallMask,
            fullComposite: full, fullMask: fullMask)
        let naiveWorst = zip(naive.values, expected.values).map { abs($0 - $1) }.max()!
        #expect(naiveWorst > 5 * worst, "naive upsampling loses the texture (\(naiveWorst) vs \(worst))")
    }

    // MARK: - PNG writer

    @Test(arguments: [(PixelLayout.rgb, 8, 1), (.rgba, 8, 7), (.gray, 8, 3), (.grayAlpha, 16, 5), (.rgb, 16, 2)])
    func parallelPNGRoundTripsThroughLibpng(layout: PixelLayout, bits: Int, strips: Int) throws {
        let (width, height) = (131, 97)
        var generator = SplitMix64(seed: UInt64(layout.channels * bits + strips))
        let noise = Tensor.uniform([height * width * layout.channels], generator: &generator).data
        // smooth ramps plus noise, so every filter type wins somewhere
        let values: [Float] = (0..<noise.count).map { i in
            let pixel = i / layout.channels, (y, x) = (pixel / width, pixel % width)
            return y < 30
                ? Float(x) / Float(width)
                : y < 60 ? noise[i] : 0.5 * Float(x + y) / Float(width + height) + 0.1 * noise[i]
        }
        let image = PlanarImage(width: width, height: height, channels: layout.channels, values: values)
        for level in [1, 6] {
            if bits == 8 {
                let raster = image.raster8()
                let data = try ParallelPNG.encode(raster, level: level, strips: strips, path: "test.png")
                #expect(try PNGCodec.decode(data, path: "test.png") == .eightBit(raster), "\(layout) level \(level)")
            } else {
                let raster = image.raster16()
                let data = try ParallelPNG.encode(raster, level: level, strips: strips, path: "test.png")
                #expect(try PNGCodec.decode(data, path: "test.png") == .sixteenBit(raster), "\(layout) level \(level)")
            }
        }
    }
}
