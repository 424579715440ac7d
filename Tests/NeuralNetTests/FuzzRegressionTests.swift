import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Inputs from the safetensors fuzz target (Fuzz/SafeTensors, docs/robustness.md), fed to the same
/// entry points: each input that once trapped is now a thrown error that changes nothing, and the
/// whole seed corpus replays through the fuzz target's checks.
@Suite struct SafeTensorsFuzzRegressionTests {
    static let folder = Fixtures.repositoryRoot.appendingPathComponent("Fuzz/SafeTensors")

    /// The fuzz target's model (Fuzz/SafeTensors/main.swift `makeModel`), which the seeds fit.
    static func makeModel() -> Sequential {
        var generator = SplitMix64(seed: 7)
        return Sequential([
            Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, generator: &generator),
            BatchNorm2d(channels: 4),
            Dropout(probability: 0.1, seed: 3),
            Conv2d(inputChannels: 4, outputChannels: 2, kernelSize: 1, bias: false, generator: &generator),
        ])
    }

    static func snapshot(_ model: any Module) -> [[UInt32]] {
        model.stateEntries().map { $0.tensor.data.map(\.bitPattern) }
    }

    static func files(in subfolder: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(
            at: folder.appendingPathComponent(subfolder), includingPropertiesForKeys: nil
        )
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// A training record whose counts are negative or Int.max would trap in
    /// `LearningRateScheduler.restore(position:)` (precondition), or at the next
    /// `optimizer.step()` / `scheduler.step()` (arithmetic overflow); `restore` must throw first.
    @Test(arguments: [
        ("negative_schedule_position", "schedule_position = -5"),
        ("maximal_schedule_position", "schedule_position = 9223372036854775807"),
        ("maximal_optimizer_step", "optimizer_steps[0.weight] = 9223372036854775807"),
    ])
    func trainingRecordCountsOutOfRangeAreRejected(name: String, message: String) throws {
        let url = Self.folder.appendingPathComponent("regressions/\(name).safetensors")
        let model = Self.makeModel()
        let before = Self.snapshot(model)
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        let scheduler = LearningRateScheduler(
            schedule: MultiStepSchedule(baseLearningRate: 1e-3, milestones: [10, 20]), optimizer: optimizer)
        let error = #expect(throws: CheckpointError.self) {
            try TrainingCheckpoint.restore(from: url, model: model, optimizer: optimizer, scheduler: scheduler)
        }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
        #expect(Self.snapshot(model) == before && scheduler.position == 0 && optimizer.learningRate == 1e-3)
    }

    /// Every seed and regression input through the fuzz target's steps and property checks.
    @Test func seedsAndRegressionsReplayWithoutTrapping() throws {
        let scratch = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var restored: [String] = []
        for url in try Self.files(in: "corpus") + Self.files(in: "regressions") {
            let data = try Data(contentsOf: url)
            guard let file = try? SafeTensorsFile(bytes: data) else { continue }
            // serialize -> parse keeps names, shapes, dtypes and values
            let again = try SafeTensorsFile(bytes: try file.serialized())
            #expect(
                again.metadata == file.metadata && Set(again.tensors.keys) == Set(file.tensors.keys),
                "\(url.lastPathComponent)")
            for (name, tensor) in file.tensors {
                #expect(again.tensors[name]?.shape == tensor.shape && again.tensors[name]?.dtype == tensor.dtype)
                #expect(again.tensors[name]?.values.map(\.bitPattern) == tensor.values.map(\.bitPattern))
            }
            // strict and lenient loads: a failed one changes nothing
            let model = Self.makeModel()
            let before = Self.snapshot(model)
            let state = file.tensors.filter { !$0.key.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
            for strict in [true, false] {
                do { try model.load(stateDictionary: state, strict: strict) } catch {
                    #expect(Self.snapshot(model) == before, "\(url.lastPathComponent)")
                }
            }
            guard file.metadata[TrainingCheckpoint.trainingKey] != nil else { continue }
            let copy = scratch.appendingPathComponent(url.lastPathComponent)
            try data.write(to: copy)
            let trained = Self.makeModel()
            let optimizer = Adam(parameters: trained.namedParameters(), learningRate: 1e-3)
            let scheduler = LearningRateScheduler(
                schedule: MultiStepSchedule(baseLearningRate: 1e-3, milestones: [10, 20]), optimizer: optimizer)
            let checkpoint = try? TrainingCheckpoint.restore(
                from: copy, model: trained, optimizer: optimizer, scheduler: scheduler)
            guard checkpoint != nil else { continue }
            for parameter in trained.parameters() { parameter.grad = [Float](repeating: 0.5, count: parameter.count) }
            optimizer.step()
            scheduler.step()
            restored.append(url.lastPathComponent)
        }
        // The valid training seed reaches the end of the pipeline.
        #expect(restored == ["training_adam.safetensors"])
    }
}
