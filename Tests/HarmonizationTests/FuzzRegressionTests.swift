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
