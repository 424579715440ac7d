import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTestSupport
import GKNetTraining
import Testing

/// Inputs from the training-configuration fuzz target (Fuzz/TrainingConfig, docs/robustness.md).
@Suite struct TrainingConfigFuzzRegressionTests {
    static let folder = Fixtures.repositoryRoot.appendingPathComponent("Fuzz/TrainingConfig")

    static func input(_ path: String) throws -> Data {
        try Data(contentsOf: folder.appendingPathComponent(path))
    }

    /// `{"epochs": Int.max}` passed validation, then `Trainer.init` trapped on the overflow of
    /// epochs x batches per epoch. `learning_rate` 1e308 passed too and the warm-up made the rate
    /// infinite. Both are now configuration errors naming the key.
    @Test(arguments: [
        ("regressions/epochs_overflow.json", "epochs at most 1000000"),
        ("regressions/huge_learning_rate.json", "learning_rate must be in (0, 10]"),
        ("corpus/huge_numbers.json", "learning_rate must be in (0, 10]"),
    ])
    func absurdValuesAreConfigurationErrors(path: String, message: String) throws {
        let error = #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(try Self.input(path), source: path)
        }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    /// Every seed and regression through the fuzz target's steps: decode, model configuration,
    /// config.json round trip, the step total for large datasets and the schedule's rates.
    @Test func seedsAndRegressionsReplayWithoutTrapping() throws {
        var accepted: [String] = []
        for subfolder in ["corpus", "regressions"] {
            let urls = try FileManager.default.contentsOfDirectory(
                at: Self.folder.appendingPathComponent(subfolder), includingPropertiesForKeys: nil)
            for url in urls.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
                guard let configuration = try? TrainingConfiguration.decode(try Data(contentsOf: url)) else { continue }
                accepted.append(url.lastPathComponent)
                let model = try configuration.modelConfiguration()
                #expect(model.inputSize == configuration.inputSize)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                #expect(try TrainingConfiguration.decode(try encoder.encode(configuration)) == configuration)
                // As Trainer.init: steps, or epochs x batches per epoch (1 ... 2^20 batches).
                for batchesPerEpoch in [1, 1 << 20] {
                    let (total, overflow) =
                        configuration.steps > 0
                        ? (configuration.steps, false)
                        : configuration.epochs.multipliedReportingOverflow(by: batchesPerEpoch)
                    #expect(!overflow && total > 0)
                    let schedule = WarmupCosineSchedule(
                        baseLearningRate: configuration.learningRate,
                        warmupSteps: min(configuration.warmupSteps, total),
                        totalSteps: total, minimumLearningRate: configuration.minimumLearningRate)
                    for step in [0, 1, total / 2, total] { #expect(schedule.learningRate(atStep: step).isFinite) }
                }
            }
        }
        #expect(
            accepted == [
                "demo-smoke.json", "empty_object.json", "every_key.json", "model_override.json", "null_values.json",
                "tiny-gcompris.json",
            ])
    }
}

/// Findings of the kill -9 soak (Scripts/kill_soak.sh, docs/robustness.md).
@Suite(.serialized) struct KillSoakRegressionTests {
    static let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples")

    static func configuration() throws -> TrainingConfiguration {
        try TrainingConfiguration.decode(
            Data(
                """
                {"preset": "tiny", "input_size": 64, "batch_size": 2, "steps": 2, "validation_interval": 0,
                 "checkpoint_interval": 1, "log_interval": 100, "warmup_steps": 1, "seed": 3}
                """.utf8))
    }

    static func runDirectory() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("gknet-soak-regression-\(UUID().uuidString)")
    }

    /// Killed after config.json was written but before the first checkpoint: `--resume` used to
    /// fail ("no last.safetensors") and a fresh start too ("already holds a run"), so the run
    /// directory was stuck. Now --resume restarts at step 0 and equals an uninterrupted run.
    @Test func killedBeforeTheFirstCheckpointResumesFromStepZero() throws {
        let killed = Self.runDirectory(), straight = Self.runDirectory()
        defer {
            try? FileManager.default.removeItem(at: killed)
            try? FileManager.default.removeItem(at: straight)
        }
        _ = try Trainer(
            configuration: try Self.configuration(), dataset: Self.samples, runDirectory: killed, resume: false)
        // (the process dies here: config.json and an empty log.jsonl exist, no checkpoint)
        let resumed = try Trainer(configuration: nil, dataset: Self.samples, runDirectory: killed, resume: true)
        #expect(resumed.step == 0)
        _ = try resumed.run()
        _ = try Trainer(
            configuration: try Self.configuration(), dataset: Self.samples, runDirectory: straight, resume: false
        ).run()
        let log = { (run: URL) in
            try String(contentsOf: run.appendingPathComponent(RunDirectory.logFile), encoding: .utf8)
                .split(separator: "\n").map {
                    $0.replacingOccurrences(of: #""images_per_second":[^,}]*"#, with: "", options: .regularExpression)
                }
        }
        #expect(try log(killed) == log(straight))
    }

    /// A kill during an atomic write leaves `.<file>.<pid>.tmp`; the next start removes it (the
    /// soak's "no temporary files left" check failed before).
    @Test func staleTemporaryFilesAreRemovedOnResume() throws {
        let directory = Self.runDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Trainer(
            configuration: try Self.configuration(), dataset: Self.samples, runDirectory: directory, resume: false
        ).run()
        let stale = [".last.safetensors.4242.tmp", ".log.jsonl.17.tmp", ".plot.png.99.tmp"]
        for name in stale { try Data([1, 2, 3]).write(to: directory.appendingPathComponent(name)) }
        try Data().write(to: directory.appendingPathComponent("notes.tmp"))  // not ours: kept
        _ = try Trainer(configuration: nil, dataset: Self.samples, runDirectory: directory, resume: true)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.filter { $0.hasSuffix(".tmp") } == ["notes.tmp"])
    }
}

/// The dataset-list fuzz target's seeds (Fuzz/DatasetList) over the same fixed tree: each seed's
/// outcome is the documented one (docs/robustness.md), and none traps.
@Suite struct DatasetListFuzzSeedTests {
    /// Fuzz/DatasetList/main.swift's tree: HSub with a (valid), b (mask 4x4), c (real image cut
    /// in half), a second composite a_1_2.png; HOther with x and its own lists.
    static func makeTree() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-dataset-seeds-\(UUID().uuidString)")
        func image(_ size: Int, gray: Bool = false) -> RasterImage8 {
            let layout: PixelLayout = gray ? .gray : .rgb
            return RasterImage8(
                width: size, height: size, layout: layout,
                samples: (0..<(size * size * layout.channels)).map { UInt8(truncatingIfNeeded: $0 &* 37) })
        }
        func write(_ path: String, _ data: Data) throws {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        let jpeg8 = try ImageFile.encode(.eightBit(image(8)), format: .jpeg)
        let png8 = try ImageFile.encode(.eightBit(image(8)), format: .png)
        let mask8 = try ImageFile.encode(.eightBit(image(8, gray: true)), format: .png)
        for (path, data) in [
            ("HSub/composite_images/a_1_1.jpg", jpeg8), ("HSub/composite_images/a_1_2.png", png8),
            ("HSub/composite_images/b_2_1.jpg", jpeg8), ("HSub/composite_images/c_3_1.JPG", jpeg8),
            ("HSub/masks/a_1.png", mask8),
            ("HSub/masks/b_2.png", try ImageFile.encode(.eightBit(image(4, gray: true)), format: .png)),
            ("HSub/masks/c_3.png", mask8), ("HSub/real_images/a.jpg", jpeg8), ("HSub/real_images/b.jpeg", jpeg8),
            ("HSub/real_images/c.jpg", jpeg8.prefix(jpeg8.count / 2)), ("HOther/composite_images/x_1_1.png", png8),
            ("HOther/masks/x_1.png", mask8), ("HOther/real_images/x.png", png8),
            ("HOther/HOther_train.txt", Data("x_1_1.png\n".utf8)), ("HOther/HOther_test.txt", Data("x_1_1\n".utf8)),
        ] { try write(path, data) }
        return root
    }

    /// What a seed leads to: "error: ..." from the dataset, or the loaded samples' outcomes.
    static func outcome(of seed: Data, root: URL) -> String {
        let mode = Int(seed[seed.startIndex]) % 3
        let split: DatasetSplit = (Int(seed[seed.startIndex]) / 3) % 2 == 0 ? .train : .test
        for name in ["IHD_train.txt", "IHD_test.txt", "HSub/HSub_train.txt", "HSub/HSub_test.txt"] {
            try? FileManager.default.removeItem(at: root.appendingPathComponent(name))
        }
        let list = root.appendingPathComponent(
            mode == 0 ? "IHD_\(split.rawValue).txt" : "HSub/HSub_\(split.rawValue).txt")
        try? seed.dropFirst().write(to: list)
        do {
            let dataset = try HarmonizationDataset(
                root: mode == 1 ? root.appendingPathComponent("HSub") : root, split: split)
            return dataset.samples.indices.map { index in
                do {
                    let sample = try dataset.load(index)
                    return "\(sample.reference.name) ok"
                } catch {
                    return "\(dataset.samples[index].name) \(error is DatasetError ? "size mismatch" : "decode error")"
                }
            }.joined(separator: ", ")
        } catch {
            return "error: \(error)"
        }
    }

    @Test func everySeedHasItsDocumentedOutcome() throws {
        let root = try Self.makeTree()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = Fixtures.repositoryRoot.appendingPathComponent("Fuzz/DatasetList/corpus")
        var outcomes: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            outcomes[name] = Self.outcome(of: try Data(contentsOf: folder.appendingPathComponent(name)), root: root)
        }
        #expect(outcomes["combined_train.txt"] == "a_1_1.jpg ok, a_1_2.png ok, x_1_1.png ok")
        #expect(outcomes["combined_crlf_blank.txt"] == "a_1_1 ok, c_3_1.jpg decode error")
        #expect(outcomes["combined_mismatch.txt"] == "b_2_1.jpg size mismatch")
        #expect(
            outcomes["subset_train.txt"]
                == "a_1_1.jpg ok, a_1_2.png ok, b_2_1.jpg size mismatch, c_3_1.jpg decode error")
        #expect(outcomes["all_subsets_train.txt"] == "x_1_1.png ok, a_1_1.JPG ok")  // subsets in name order
        #expect(outcomes["all_subsets_test.txt"] == "x_1_1 ok, a_1_2 ok")
        #expect(outcomes["empty.txt"] == "")
        #expect(outcomes["combined_missing.txt"]?.contains("not found") == true)
        #expect(outcomes["combined_bad_path.txt"]?.contains("expected \"<Subset>/composite_images/<name>\"") == true)
        #expect(outcomes["subset_bad_name.txt"]?.contains("is not <id>_<mask>_<k>") == true)
        #expect(outcomes["subset_path.txt"]?.contains("expected a bare composite file name") == true)
        #expect(outcomes.count == 11, "\(outcomes)")
    }
}
