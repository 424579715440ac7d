// End to end: the built `gknet` executable harmonizes the bundled sample (Samples/HGCompris) with
// a temporary tiny checkpoint, and fails with a one-line error and a non-zero exit on a bad path.
import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTestSupport
import Testing

private let gknetExecutable = builtExecutable("gknet")

struct Run {
    var status: Int32
    var standardOutput: String
    var standardError: String
}

private func gknet(_ arguments: [String]) throws -> Run {
    try run(try gknetExecutable.require(), arguments)
}

/// Runs `executable` with `arguments`, no default model and 2 threads unless the caller's
/// environment sets them.
func run(_ executable: URL, _ arguments: [String]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["GKNET_MODEL"] = nil
    environment["GKNET_THREADS"] = environment["GKNET_THREADS"] ?? "2"
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // read before waiting so that a full pipe cannot block the child
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
        standardError: String(decoding: errData, as: UTF8.self))
}

/// Skipped when `gknet` is not built, except under CI (`Fixtures.isCI`), where that is a failure.
@Suite(
    .serialized,
    .enabled(
        if: runsExecutables(gknetExecutable),
        "the gknet executable is not built: run `swift build` (or `make test`) first"))
struct HarmonizeCLITests {
    let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples/HGCompris")

    /// A tiny random GKNet (64x64 input) saved like a `gknet train` checkpoint.
    func tinyCheckpoint(in folder: URL) throws -> URL {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.inputSize = 64
        let model = try GKNet(configuration: configuration, seed: 9)
        let url = folder.appendingPathComponent("tiny.safetensors")
        try Checkpoint.save(model, to: url, configuration: model.configuration)
        return url
    }

    func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test func harmonizesTheBundledSampleAtItsSizeWithTheBackgroundUnchanged() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try tinyCheckpoint(in: folder)
        let composite = samples.appendingPathComponent("composite_images/panda_1_1.jpg")
        let mask = samples.appendingPathComponent("masks/panda_1.png")
        let output = folder.appendingPathComponent("panda.png"), sheet = folder.appendingPathComponent("sheet.png")
        let run = try gknet([
            "harmonize", composite.path, mask.path, "-o", output.path, "--model", model.path, "--comparison",
            sheet.path,
        ])
        #expect(run.status == 0, "exit \(run.status): \(run.standardError)")

        let original = PlanarImage(rgb: try ImageFile.read(composite)).raster8()
        guard case .eightBit(let result) = try ImageFile.read(output) else {
            Issue.record("output is not 8-bit")
            return
        }
        #expect(
            result.width == original.width && result.height == original.height,
            "output \(result.width)x\(result.height), composite \(original.width)x\(original.height)")
        let maskImage = try ImageFile.readMask(mask)
        var background = 0, differing = 0, changedForeground = 0
        for y in 0..<original.height {
            for x in 0..<original.width {
                let isBackground = maskImage[0, y, x] == 0
                for c in 0..<3 where result[x, y, c] != original[x, y, c] {
                    if isBackground { differing += 1 } else { changedForeground += 1 }
                }
                if isBackground { background += 1 }
            }
        }
        #expect(background > 0 && differing == 0, "\(differing) background samples changed")
        #expect(changedForeground > 0, "foreground unchanged")
        let sheetImage = try ImageFile.read(sheet)
        #expect(sheetImage.width > sheetImage.height)
    }

    @Test func badInputsExitNonZeroWithOneLineNamingTheFile() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try tinyCheckpoint(in: folder)
        let composite = samples.appendingPathComponent("composite_images/panda_1_1.jpg")
        let mask = samples.appendingPathComponent("masks/panda_1.png")
        let missing = folder.appendingPathComponent("missing/out.png")
        let run = try gknet(["harmonize", composite.path, mask.path, "-o", missing.path, "--model", model.path])
        #expect(run.status != 0)
        let lines = run.standardError.split(separator: "\n")
        #expect(
            lines.count == 1 && lines[0].contains(missing.path) && lines[0].contains("does not exist"),
            "stderr: \(run.standardError)")

        let noModel = try gknet([
            "harmonize", composite.path, mask.path, "-o", folder.appendingPathComponent("x.png").path, "--model",
            folder.appendingPathComponent("none.safetensors").path,
        ])
        #expect(
            noModel.status != 0 && noModel.standardError.contains("none.safetensors"),
            "stderr: \(noModel.standardError)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x.png").path))

        // The full-resolution options are checked before any work, in harmonize and evaluate alike.
        let output = folder.appendingPathComponent("y.png")
        let badMethod = try gknet([
            "harmonize", composite.path, mask.path, "-o", output.path, "--model", model.path, "--method", "bicubic",
        ])
        #expect(
            badMethod.status != 0 && badMethod.standardError.contains("--method must be one of local-affine"),
            "stderr: \(badMethod.standardError)")
        let badGrid = try gknet([
            "harmonize", composite.path, mask.path, "-o", output.path, "--model", model.path, "--affine-grid", "0",
        ])
        #expect(
            badGrid.status != 0 && badGrid.standardError.contains("--affine-grid must be in 1...64"),
            "stderr: \(badGrid.standardError)")
        let badRidge = try gknet([
            "evaluate", "--dataset", samples.deletingLastPathComponent().path, "--model", model.path,
            "--affine-regularization=-1",
        ])
        #expect(
            badRidge.status != 0 && badRidge.standardError.contains("--affine-regularization must be"),
            "stderr: \(badRidge.standardError)")
        #expect(!FileManager.default.fileExists(atPath: output.path))

        // A model file without a weight average: export --weight-average says so and writes nothing.
        let exported = folder.appendingPathComponent("average.safetensors")
        let noAverage = try gknet(["export", "--model", model.path, "-o", exported.path, "--weight-average"])
        let exportLines = noAverage.standardError.split(separator: "\n")
        #expect(
            noAverage.status != 0 && exportLines.count == 1 && exportLines[0].contains(model.path)
                && exportLines[0].contains("holds no weight average"), "stderr: \(noAverage.standardError)")
        #expect(!FileManager.default.fileExists(atPath: exported.path))
    }

    @Test func batchModeWritesEveryCompositeOfTheSplit() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try tinyCheckpoint(in: folder)
        let output = folder.appendingPathComponent("out")
        let run = try gknet([
            "harmonize", "--dataset", samples.path, "--split", "test", "--output-dir", output.path, "--model",
            model.path,
        ])
        #expect(run.status == 0, "exit \(run.status): \(run.standardError)")
        let written = try FileManager.default.contentsOfDirectory(atPath: output.path).sorted()
        #expect(written == ["solar-cooker_1_1.png", "solar-cooker_1_2.png"])
    }

    /// `--shard i/n`: disjoint shares whose union is the unsharded output, byte for byte.
    @Test func shardsTogetherWriteExactlyTheUnshardedOutput() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try tinyCheckpoint(in: folder)
        func harmonize(into output: URL, shard: String?) throws -> [String: Data] {
            let run = try gknet(
                [
                    "harmonize", "--dataset", samples.path, "--split", "train", "--output-dir", output.path, "--model",
                    model.path,
                ] + (shard.map { ["--shard", $0] } ?? []))
            #expect(run.status == 0, "shard \(shard ?? "none"): exit \(run.status): \(run.standardError)")
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: output.path) {
                files[name] = try Data(contentsOf: output.appendingPathComponent(name))
            }
            return files
        }
        let whole = try harmonize(into: folder.appendingPathComponent("whole"), shard: nil)
        #expect(whole.count == 6)
        var union: [String: Data] = [:]
        for index in 0..<4 {  // 6 images over 4 shards: 2, 2, 1, 1
            let part = try harmonize(into: folder.appendingPathComponent("shard\(index)"), shard: "\(index)/4")
            #expect(part.count == (index < 2 ? 2 : 1), "shard \(index)/4 wrote \(part.keys.sorted())")
            #expect(Set(part.keys).isDisjoint(with: union.keys), "shard \(index)/4 overlaps an earlier shard")
            union.merge(part) { first, _ in first }
        }
        #expect(union == whole, "the shards' union differs from the unsharded output")
        let bad = try gknet([
            "harmonize", "--dataset", samples.path, "--output-dir", folder.path, "--model", model.path, "--shard",
            "4/4",
        ])
        #expect(bad.status != 0 && bad.standardError.contains("--shard"), "stderr: \(bad.standardError)")
    }
}
