// Checkpoints in safetensors: a model's state_dict (PyTorch names, so the PyTorch twin loads the
// same file), JSON metadata (model configuration, training step), strict or lenient loading, and
// training checkpoints that also hold optimizer state, schedule position and RNG states so that a
// resumed run continues bit for bit. Writes are atomic (temporary file, then rename).
import Foundation
import GKNetTensorCore

/// A state that does not fit a module. Lists every problem at once, by name.
public struct StateLoadError: Error, CustomStringConvertible {
    /// Names the module has and the file lacks.
    public var missing: [String]
    /// Names the file has and the module lacks.
    public var unexpected: [String]
    /// Names present on both sides with different shapes.
    public var mismatched: [(name: String, expected: [Int], found: [Int])]

    public var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing \(missing.count): " + missing.joined(separator: ", ")) }
        if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count): " + unexpected.joined(separator: ", ")) }
        if !mismatched.isEmpty {
            parts.append(
                "mis-shaped \(mismatched.count): "
                    + mismatched.map {
                        "\($0.name) (model \($0.expected), file \($0.found))"
                    }.joined(separator: ", "))
        }
        return "state does not fit the model: " + parts.joined(separator: "; ")
    }
}

/// What a lenient (non-strict) load skipped.
public struct StateLoadReport: Equatable, Sendable {
    public var missing: [String]
    public var unexpected: [String]
    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty }
}

extension Module {
    /// The `state_dict`: every parameter and buffer by dotted name, stored as `dtype`
    /// (integer buffers as I64). A float tensor holding a finite value that F16 cannot hold
    /// (|x| >= 65520, which would become infinity: a BatchNorm running variance can reach 3e5) is
    /// stored as F32 instead (see `tensorsWidenedFromF16`).
    public func stateDictionary(dtype: SafeTensorsDType = .f32) -> [String: NamedTensor] {
        var result: [String: NamedTensor] = [:]
        for entry in stateEntries() {
            var storage = entry.isInteger ? SafeTensorsDType.i64 : dtype
            if storage == .f16 && entry.tensor.data.contains(where: overflowsHalfPrecision) { storage = .f32 }
            result[entry.name] = NamedTensor(shape: entry.tensor.shape, values: entry.tensor.data, dtype: storage)
        }
        return result
    }

    /// The tensors that `stateDictionary(dtype: .f16)` keeps in F32 because a value would overflow F16.
    public var tensorsWidenedFromF16: [String] {
        stateDictionary(dtype: .f16).filter { $0.value.dtype == .f32 }.keys.sorted()
    }

    /// Copies a state into this module's tensors, all or nothing (PyTorch `load_state_dict`).
    ///
    /// Strict: any missing, unexpected or mis-shaped tensor throws one `StateLoadError` naming them
    /// all, and nothing is changed. Lenient: missing and unexpected names are skipped and reported;
    /// a shape mismatch still throws (as in PyTorch).
    @discardableResult
    public func load(stateDictionary state: [String: NamedTensor], strict: Bool = true) throws -> StateLoadReport {
        let report = try checkState(state, strict: strict)
        for entry in stateEntries() {
            if let saved = state[entry.name] { entry.tensor.data = saved.values }
        }
        return report
    }

    /// The checks of `load(stateDictionary:strict:)` without changing anything.
    @discardableResult
    public func checkState(_ state: [String: NamedTensor], strict: Bool = true) throws -> StateLoadReport {
        let entries = stateEntries()
        let names = Set(entries.map(\.name))
        var error = StateLoadError(
            missing: [], unexpected: state.keys.filter { !names.contains($0) }.sorted(), mismatched: [])
        for entry in entries {
            guard let saved = state[entry.name] else {
                error.missing.append(entry.name)
                continue
            }
            if saved.shape != entry.tensor.shape || saved.values.count != entry.tensor.count {
                error.mismatched.append((entry.name, entry.tensor.shape, saved.shape))
            }
        }
        if !error.mismatched.isEmpty || (strict && !(error.missing.isEmpty && error.unexpected.isEmpty)) {
            throw error
        }
        return StateLoadReport(missing: error.missing, unexpected: error.unexpected)
    }
}

/// Model checkpoints: one safetensors file with the state_dict and string metadata.
public enum Checkpoint {
    /// Metadata key of the model configuration (JSON).
    public static let configurationKey = "gknet.config"
    /// Metadata key of the training step the weights come from.
    public static let stepKey = "gknet.step"

    /// Writes `model`'s state_dict atomically.
    /// - Parameters:
    ///   - dtype: storage of float tensors (F32, F16 or BF16); integer buffers are I64.
    ///   - configuration: stored as JSON under `gknet.config`.
    ///   - step: stored under `gknet.step`.
    ///   - metadata: any further string pairs.
    public static func save(
        _ model: any Module, to url: URL, dtype: SafeTensorsDType = .f32, configuration: (any Encodable)? = nil,
        step: Int? = nil, metadata: [String: String] = [:]
    ) throws {
        var file = SafeTensorsFile(tensors: model.stateDictionary(dtype: dtype), metadata: metadata)
        try addCommonMetadata(to: &file, configuration: configuration, step: step)
        try file.write(to: url)
    }

    /// Loads a checkpoint into `model` and returns the file (its metadata and tensors).
    /// Tensors of a training checkpoint's optimizer state are ignored here.
    @discardableResult
    public static func load(into model: any Module, from url: URL, strict: Bool = true) throws -> SafeTensorsFile {
        let file = try SafeTensorsFile(contentsOf: url)
        do {
            try model.load(
                stateDictionary: file.tensors.filter { !TrainingCheckpoint.isTrainingState($0.key) },
                strict: strict)
        } catch let error as StateLoadError {
            throw CheckpointError("\(url.path): \(error)")
        }
        return file
    }

    /// Decodes the configuration stored under `gknet.config`, or nil if there is none.
    public static func configuration<C: Decodable>(_ type: C.Type, in file: SafeTensorsFile) throws -> C? {
        guard let text = file.metadata[configurationKey] else { return nil }
        do {
            return try JSONDecoder().decode(C.self, from: Data(text.utf8))
        } catch {
            throw CheckpointError("\(configurationKey) does not decode as \(C.self): \(error)")
        }
    }

    static func addCommonMetadata(to file: inout SafeTensorsFile, configuration: (any Encodable)?, step: Int?) throws {
        // "format": "pt" lets Hugging Face tools treat the file as a PyTorch state_dict.
        file.metadata["format"] = file.metadata["format"] ?? "pt"
        if let configuration {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            file.metadata[configurationKey] = String(decoding: try encoder.encode(configuration), as: UTF8.self)
        }
        if let step { file.metadata[stepKey] = String(step) }
    }
}

/// A checkpoint that cannot be used, with the file and the reason.
public struct CheckpointError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Whether a finite float becomes infinite when rounded to IEEE half precision (|x| >= 65520).
func overflowsHalfPrecision(_ value: Float) -> Bool {
    value.isFinite && Float(halfBits: value.halfBits).isInfinite
}
