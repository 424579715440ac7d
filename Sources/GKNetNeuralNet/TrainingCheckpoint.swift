// Training checkpoints: one safetensors file holding the model state_dict (plain names, so it also
// loads as a model checkpoint), the optimizer buffers (`__optimizer__.<slot>.<parameter>`), and in
// the `gknet.training` metadata (JSON) the step, per-parameter optimizer step counts, learning rate,
// schedule position and RNG states (the caller's, and every Dropout module's, found by walking
// the model). Everything is float32 or exact integers, so
// save -> restore -> continue gives the same bits as an uninterrupted run.
import Foundation
import GKNetTensorCore

/// Where a restored run stands.
public struct TrainingProgress: Equatable, Sendable {
    /// Optimizer updates completed.
    public var step: Int
    /// The saved random generators (data order, dropout, augmentation...), by the caller's names.
    public var generators: [String: SplitMix64]

    public init(step: Int, generators: [String: SplitMix64] = [:]) {
        self.step = step
        self.generators = generators
    }
}

public enum TrainingCheckpoint {
    /// Prefix of optimizer tensors; no module name starts with it.
    public static let optimizerPrefix = "__optimizer__."
    /// Prefix of the caller's other training state (a weight average); no module name starts with it.
    public static let auxiliaryPrefix = "__auxiliary__."

    /// Whether a checkpoint tensor is training state (optimizer, auxiliary) rather than a model weight.
    public static func isTrainingState(_ name: String) -> Bool {
        name.hasPrefix(optimizerPrefix) || name.hasPrefix(auxiliaryPrefix)
    }
    /// Metadata key of the training record (JSON).
    public static let trainingKey = "gknet.training"
    /// Largest step count or schedule position a training record may hold (2^48: far beyond any
    /// run, and far from overflowing when incremented).
    public static let maximumCount = 1 << 48

    /// The JSON record stored under `gknet.training`.
    struct Record: Codable {
        var step: Int
        var optimizer: String
        var optimizerSteps: [String: Int]
        var learningRate: Double
        var schedulePosition: Int?
        /// SplitMix64 states as decimal strings (JSON numbers lose UInt64 precision in some readers).
        var generators: [String: String]
        /// The generators of the model's Dropout modules, by module path.
        var moduleGenerators: [String: String]

        enum CodingKeys: String, CodingKey {
            case step, optimizer, generators
            case moduleGenerators = "module_generators"
            case optimizerSteps = "optimizer_steps"
            case learningRate = "learning_rate"
            case schedulePosition = "schedule_position"
        }
    }

    /// Writes everything needed to resume, atomically.
    public static func save(
        to url: URL, model: any Module, optimizer: any Optimizer, scheduler: LearningRateScheduler? = nil,
        step: Int, generators: [String: SplitMix64] = [:], configuration: (any Encodable)? = nil,
        metadata: [String: String] = [:], auxiliary: [String: NamedTensor] = [:]
    ) throws {
        var tensors = model.stateDictionary(dtype: .f32)
        for (key, tensor) in auxiliary { tensors[auxiliaryPrefix + key] = tensor }
        let state = optimizer.state
        let shapes = Dictionary(
            optimizer.parameters.map { ($0.name, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
        for (key, values) in state.buffers {
            // Buffers keep their parameter's shape so the file reads naturally in Python.
            let parameterName = key.split(separator: ".", maxSplits: 1).last.map(String.init) ?? key
            let shape = shapes[parameterName].flatMap { $0.elementCount == values.count ? $0 : nil } ?? [values.count]
            tensors[optimizerPrefix + key] = NamedTensor(shape: shape, values: values)
        }
        let record = Record(
            step: step, optimizer: state.kind, optimizerSteps: state.steps, learningRate: optimizer.learningRate,
            schedulePosition: scheduler?.position, generators: generators.mapValues { String($0.state) },
            moduleGenerators: Dictionary(
                uniqueKeysWithValues: dropoutModules(of: model).map { ($0.0, String($0.1.generator.state)) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var file = SafeTensorsFile(tensors: tensors, metadata: metadata)
        file.metadata[trainingKey] = String(decoding: try encoder.encode(record), as: UTF8.self)
        try Checkpoint.addCommonMetadata(to: &file, configuration: configuration, step: step)
        try file.write(to: url)
    }

    /// Restores model, optimizer and scheduler from a training checkpoint, all or nothing: every
    /// check runs before any tensor changes. The model is loaded strictly.
    /// - Returns: the step and generators to continue with, and the file (for its metadata).
    @discardableResult
    public static func restore(
        from url: URL, model: any Module, optimizer: any Optimizer, scheduler: LearningRateScheduler? = nil
    ) throws -> (progress: TrainingProgress, file: SafeTensorsFile) {
        let file = try SafeTensorsFile(contentsOf: url)
        guard let text = file.metadata[trainingKey] else {
            throw CheckpointError("\(url.path): not a training checkpoint (no \(trainingKey) metadata)")
        }
        let record: Record
        do {
            record = try JSONDecoder().decode(Record.self, from: Data(text.utf8))
        } catch {
            throw CheckpointError("\(url.path): \(trainingKey) is not a valid training record (\(error))")
        }
        // Counts outside 0...maximumCount would trap later (negative schedule position, step += 1).
        let counts =
            [("step", record.step), ("schedule_position", record.schedulePosition ?? 0)]
            + record.optimizerSteps.sorted { $0.key < $1.key }.map { ("optimizer_steps[\($0.key)]", $0.value) }
        if let (name, value) = counts.first(where: { !(0...maximumCount).contains($0.1) }) {
            throw CheckpointError("\(url.path): \(trainingKey) has \(name) = \(value), outside 0...\(maximumCount)")
        }
        guard record.learningRate.isFinite, record.learningRate >= 0 else {
            throw CheckpointError("\(url.path): \(trainingKey) has the invalid learning_rate \(record.learningRate)")
        }
        func decode(_ states: [String: String]) throws -> [String: SplitMix64] {
            try states.mapValues { value in
                guard let state = UInt64(value) else {
                    throw CheckpointError("\(url.path): a generator has the invalid state \"\(value)\"")
                }
                return SplitMix64(seed: state)
            }
        }
        let generators = try decode(record.generators)
        let moduleGenerators = try decode(record.moduleGenerators)
        let dropouts = dropoutModules(of: model)
        guard Set(dropouts.map(\.0)) == Set(moduleGenerators.keys) else {
            throw CheckpointError(
                "\(url.path): the checkpoint's dropout generators \(moduleGenerators.keys.sorted()) do not match the "
                    + "model's dropout modules \(dropouts.map(\.0))"
            )
        }
        if scheduler != nil, record.schedulePosition == nil {
            throw CheckpointError("\(url.path): the checkpoint has no schedule position to restore")
        }
        var modelState: [String: NamedTensor] = [:]
        var optimizerState = OptimizerState(kind: record.optimizer, steps: record.optimizerSteps)
        for (name, tensor) in file.tensors where !name.hasPrefix(auxiliaryPrefix) {
            if name.hasPrefix(optimizerPrefix) {
                optimizerState.buffers[String(name.dropFirst(optimizerPrefix.count))] = tensor.values
            } else {
                modelState[name] = tensor
            }
        }
        do {
            try model.checkState(modelState, strict: true)
            try optimizer.load(state: optimizerState)
        } catch let error as StateLoadError {
            throw CheckpointError("\(url.path): \(error)")
        } catch let error as OptimizerStateError {
            throw CheckpointError("\(url.path): \(error)")
        }
        try model.load(stateDictionary: modelState, strict: true)
        for (path, dropout) in dropouts { dropout.generator = moduleGenerators[path]! }
        optimizer.learningRate = record.learningRate
        if let scheduler, let position = record.schedulePosition { scheduler.restore(position: position) }
        return (TrainingProgress(step: record.step, generators: generators), file)
    }
}

/// The model's Dropout modules that draw random numbers, by module path.
private func dropoutModules(of model: any Module) -> [(String, Dropout)] {
    model.namedModules().compactMap { path, module in
        guard let dropout = module as? Dropout, dropout.probability > 0 else { return nil }
        return (path, dropout)
    }
}
