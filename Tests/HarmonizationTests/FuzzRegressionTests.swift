import Foundation
import GKNetModel
import Harmonization
import NeuralNet
import Testing
import _TestSupport

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
                    let (total, overflow) = configuration.steps > 0
                        ? (configuration.steps, false) : configuration.epochs.multipliedReportingOverflow(by: batchesPerEpoch)
                    #expect(!overflow && total > 0)
                    let schedule = WarmupCosineSchedule(
                        baseLearningRate: configuration.learningRate, warmupSteps: min(configuration.warmupSteps, total),
                        totalSteps: total, minimumLearningRate: configuration.minimumLearningRate)
                    for step in [0, 1, total / 2, total] { #expect(schedule.learningRate(atStep: step).isFinite) }
                }
            }
        }
        #expect(accepted == ["demo-smoke.json", "empty_object.json", "every_key.json", "model_override.json", "null_values.json", "tiny-gcompris.json"])
    }
}

/// Findings of the kill -9 soak (Scripts/kill_soak.sh, docs/robustness.md).
@Suite(.serialized) struct KillSoakRegressionTests {
    static let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples")

    static func configuration() throws -> TrainingConfiguration {
        try TrainingConfiguration.decode(Data("""
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
        defer { try? FileManager.default.removeItem(at: killed); try? FileManager.default.removeItem(at: straight) }
        _ = try Trainer(configuration: try Self.configuration(), dataset: Self.samples, runDirectory: killed, resume: false)
        // (the process dies here: config.json and an empty log.jsonl exist, no checkpoint)
        let resumed = try Trainer(configuration: nil, dataset: Self.samples, runDirectory: killed, resume: true)
        #expect(resumed.step == 0)
        _ = try resumed.run()
        _ = try Trainer(configuration: try Self.configuration(), dataset: Self.samples, runDirectory: straight, resume: false).run()
        let log = { (run: URL) in try String(contentsOf: run.appendingPathComponent(Trainer.logFile), encoding: .utf8)
            .split(separator: "\n").map { $0.replacingOccurrences(of: #""images_per_second":[^,}]*"#, with: "", options: .regularExpression) } }
        #expect(try log(killed) == log(straight))
    }

    /// A kill during an atomic write leaves `.<file>.<pid>.tmp`; the next start removes it (the
    /// soak's "no temporary files left" check failed before).
    @Test func staleTemporaryFilesAreRemovedOnResume() throws {
        let directory = Self.runDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Trainer(configuration: try Self.configuration(), dataset: Self.samples, runDirectory: directory, resume: false).run()
        let stale = [".last.safetensors.4242.tmp", ".log.jsonl.17.tmp", ".plot.png.99.tmp"]
        for name in stale { try Data([1, 2, 3]).write(to: directory.appendingPathComponent(name)) }
        try Data().write(to: directory.appendingPathComponent("notes.tmp"))  // not ours: kept
        _ = try Trainer(configuration: nil, dataset: Self.samples, runDirectory: directory, resume: true)
        let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(left.filter { $0.hasSuffix(".tmp") } == ["notes.tmp"])
    }
}
