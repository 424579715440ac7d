// Fuzz target: training configuration files (`gknet train --config FILE`, and `config.json` in a
// run directory, which `--resume` reads back).
//
// Entry points reached by user input: `TrainingConfiguration.decode(_:source:)` (JSON, unknown
// keys, types, `validate()` including the nested GKNet model configuration) and
// `modelConfiguration()`. A configuration that passes must also survive what `Trainer.init` and
// `Trainer.run` compute from it before any image is read: the step total for a few dataset
// sizes, the learning-rate schedule and its rates, the augmentation (the same
// TrainingConfiguration methods the trainer calls), so that a value the decoder lets through
// cannot trap there.
// Build and run: Fuzz/run.sh TrainingConfig (see docs/robustness.md).
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTraining

/// Trainer.init: total steps from steps or epochs x batches per epoch, then the schedule.
func derivedValues(_ configuration: TrainingConfiguration, batchesPerEpoch: Int) {
    let totalSteps = configuration.totalSteps(batchesPerEpoch: batchesPerEpoch)
    let schedule = configuration.learningRateSchedule(totalSteps: totalSteps)
    for step in [0, 1, totalSteps / 2, totalSteps - 1, totalSteps] {
        let rate = schedule.learningRate(atStep: step)
        guard rate.isFinite, rate >= 0 else { fatalError("learning rate \(rate) at step \(step) of \(totalSteps)") }
    }
    _ = configuration.trainingAugmentation(size: configuration.inputSize)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let configuration = try? TrainingConfiguration.decode(data, source: "fuzz.json") else { return 0 }
    guard let model = try? configuration.modelConfiguration() else {
        fatalError("validated configuration has no valid model configuration")
    }
    guard model.inputSize == configuration.inputSize else { fatalError("model input size differs from input_size") }
    // What `--resume` does: the run directory's config.json is this value encoded, read back.
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    guard let written = try? encoder.encode(configuration),
        let again = try? TrainingConfiguration.decode(written, source: "config.json")
    else { fatalError("a valid configuration does not survive its own config.json") }
    guard again == configuration else { fatalError("config.json round trip changed the configuration") }
    // Dataset sizes from one batch per epoch to a large set.
    for batchesPerEpoch in [1, 7, 1 << 20] { derivedValues(configuration, batchesPerEpoch: batchesPerEpoch) }
    return 0
}
