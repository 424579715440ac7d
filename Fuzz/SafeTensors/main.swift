// Fuzz target: safetensors files as `gknet` reads them (checkpoints, training checkpoints, fixtures).
//
// Entry points reached by user input: `SafeTensorsFile(bytes:)` (header + tensor table), the strict
// and lenient `Module.load(stateDictionary:)` into a small model, the model configuration stored in
// the metadata (`Checkpoint.configuration` + `validate()`), and `TrainingCheckpoint.restore` (the
// `gknet.training` record, optimizer buffers, generator states, schedule position) followed by one
// optimizer update and schedule step, as a resumed training run does.
//
// Beyond "no trap, no sanitizer report", it checks two properties and traps when they fail:
// a failed load changes nothing, and a parsed file survives serialize -> parse unchanged.
// Build and run: Fuzz/build.sh SafeTensors; Fuzz/run.sh SafeTensors (see docs/robustness.md).
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

/// The model the seeds were written for (Fuzz/make_seeds.py mirrors its names and shapes):
/// 0: Conv2d 3 -> 4, k3 (weight, bias); 1: BatchNorm2d 4 (+ num_batches_tracked, I64);
/// 2: Dropout 0.1 (generator in training checkpoints); 3: Conv2d 4 -> 2, k1, no bias.
func makeModel() -> Sequential {
    var generator = SplitMix64(seed: 7)
    return Sequential([
        Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, generator: &generator),
        BatchNorm2d(channels: 4),
        Dropout(probability: 0.1, seed: 3),
        Conv2d(inputChannels: 4, outputChannels: 2, kernelSize: 1, bias: false, generator: &generator),
    ])
}

/// Every state value, for the "a failed load changes nothing" check.
func snapshot(_ model: any Module) -> [[UInt32]] {
    model.stateEntries().map { $0.tensor.data.map(\.bitPattern) }
}

/// Equal as floats, NaN equal to NaN (payloads may be quieted by a round trip).
func sameValues(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
}

/// FUZZ_VERBOSE=1 prints what each stage made of an input (to check that the seeds reach every stage).
let verbose = ProcessInfo.processInfo.environment["FUZZ_VERBOSE"] != nil
func note(_ text: @autoclosure () -> String) {
    if verbose { FileHandle.standardError.write(Data((text() + "\n").utf8)) }
}

let scratchURL = FileManager.default.temporaryDirectory
    .appendingPathComponent("gknet-fuzz-safetensors-\(ProcessInfo.processInfo.processIdentifier).safetensors")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    let file: SafeTensorsFile
    do {
        file = try SafeTensorsFile(bytes: data)
    } catch {
        note("parse: \(error)")
        return 0
    }
    note("parse: \(file.tensors.count) tensors, \(file.metadata.count) metadata keys")

    // Round trip: what we accept, we write back and read back identically.
    if let written = try? file.serialized() {
        guard let again = try? SafeTensorsFile(bytes: written) else { fatalError("re-serialized file does not parse") }
        guard again.metadata == file.metadata, again.tensors.keys.sorted() == file.tensors.keys.sorted() else {
            fatalError("round trip changed the metadata or the names")
        }
        for (name, tensor) in file.tensors {
            let other = again.tensors[name]!
            guard other.shape == tensor.shape, other.dtype == tensor.dtype, sameValues(other.values, tensor.values)
            else {
                fatalError("round trip changed tensor \(name)")
            }
        }
    }

    // Model checkpoint: strict and lenient loads, as `Checkpoint.load(into:from:strict:)` does them
    // (optimizer tensors of a training checkpoint are left out); a throwing load changes nothing.
    let model = makeModel()
    let before = snapshot(model)
    let modelState = file.tensors.filter { !$0.key.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
    for strict in [true, false] {
        do {
            try model.load(stateDictionary: modelState, strict: strict)
            note("load (strict: \(strict)): ok")
        } catch {
            note("load (strict: \(strict)): \(error)")
            guard snapshot(model) == before else { fatalError("a failed load (strict: \(strict)) changed the model") }
        }
    }

    // The model configuration in the metadata (how `gknet harmonize` learns the architecture).
    do {
        if let configuration = try Checkpoint.configuration(GKNetConfiguration.self, in: file) {
            try configuration.validate()
            note("configuration: valid")
        }
    } catch {
        note("configuration: \(error)")
    }

    // Training checkpoint: the restore path reads a file, so write the input out first.
    if file.metadata[TrainingCheckpoint.trainingKey] != nil, (try? data.write(to: scratchURL)) != nil {
        let model = makeModel()
        let before = snapshot(model)
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        let scheduler = LearningRateScheduler(
            schedule: MultiStepSchedule(baseLearningRate: 1e-3, milestones: [10, 20]), optimizer: optimizer)
        do {
            let (progress, _) = try TrainingCheckpoint.restore(
                from: scratchURL, model: model, optimizer: optimizer, scheduler: scheduler)
            note("restore: step \(progress.step)")
            // Training continues from here: one optimizer update and one schedule step.
            for parameter in model.parameters() { parameter.grad = [Float](repeating: 0.5, count: parameter.count) }
            optimizer.step()
            scheduler.step()
        } catch {
            note("restore: \(error)")
            guard snapshot(model) == before else { fatalError("a failed restore changed the model") }
        }
    }
    try? FileManager.default.removeItem(at: scratchURL)
    return 0
}
