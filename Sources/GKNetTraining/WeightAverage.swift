// An exponential moving average of a model's weights (Polyak averaging, `weight_average_decay`):
// what validation sees and best.safetensors keeps, while the optimizer steps the raw weights.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore

/// The weight average that a training checkpoint (`last.safetensors` of a run with
/// `weight_average_decay`) keeps, as a model state dictionary (plain names); nil when it has none.
public func weightAverageState(in file: SafeTensorsFile) -> [String: NamedTensor]? {
    let prefix = TrainingCheckpoint.auxiliaryPrefix + WeightAverage.tensorPrefix
    let state = Dictionary(
        uniqueKeysWithValues: file.tensors.compactMap { key, tensor in
            key.hasPrefix(prefix) ? (String(key.dropFirst(prefix.count)), tensor) : nil
        })
    return state.isEmpty ? nil : state
}

/// After every optimizer step each floating-point parameter and buffer (batch-norm statistics too)
/// moves its average toward its value:
///
///     average += (1 - d_n) (value - average),   d_n = min(decay, (1 + n) / (10 + n)),
///
/// n the updates so far: the warm-up keeps the starting weights from weighing in for about
/// 1 / (1 - decay) steps (TensorFlow's `num_updates`). Integer buffers (`num_batches_tracked`) take
/// their current value. Float arithmetic in a fixed order, saved in F32: a resumed run continues bit
/// for bit.
final class WeightAverage {
    let decay: Double
    private(set) var updates = 0
    /// One array per `stateEntries()` entry of the model, in that order.
    private var averages: [[Float]]

    static let metadataKey = "gknet.weight_average"
    static let tensorPrefix = "weight_average."

    /// Starts the average at the model's current state.
    init(model: any Module, decay: Double) {
        self.decay = decay
        averages = model.stateEntries().map { $0.tensor.data }
    }

    /// The weight of the current values in this update: 1 - d_n.
    var currentWeight: Float { Float(1 - min(decay, Double(1 + updates) / Double(10 + updates))) }

    /// One step of the average toward the model's current state.
    func update(from model: any Module) {
        let factor = currentWeight
        for (index, entry) in model.stateEntries().enumerated() {
            let values = entry.tensor.data
            if entry.isInteger {
                averages[index] = values
                continue
            }
            averages[index].withUnsafeMutableBufferPointer { average in
                for i in average.indices { average[i] += factor * (values[i] - average[i]) }
            }
        }
        updates += 1
    }

    /// Runs `body` with the model's parameters and buffers set to the average, then puts the
    /// model's own values back, bit for bit.
    func withAverage<T>(in model: any Module, _ body: () throws -> T) rethrows -> T {
        let entries = model.stateEntries()
        let own = entries.map { $0.tensor.data }
        for (index, entry) in entries.enumerated() { entry.tensor.data = averages[index] }
        defer { for (index, entry) in entries.enumerated() { entry.tensor.data = own[index] } }
        return try body()
    }

    /// The average as training-checkpoint tensors (`weight_average.<state name>`) and its metadata.
    func checkpointState(of model: any Module) -> (tensors: [String: NamedTensor], metadata: [String: String]) {
        var tensors: [String: NamedTensor] = [:]
        for (index, entry) in model.stateEntries().enumerated() {
            tensors[Self.tensorPrefix + entry.name] = NamedTensor(shape: entry.tensor.shape, values: averages[index])
        }
        let record = String(decoding: (try? JSONEncoder().encode(Record(updates: updates))) ?? Data(), as: UTF8.self)
        return (tensors, [Self.metadataKey: record])
    }

    /// The metadata record (`gknet.weight_average`).
    private struct Record: Codable { var updates: Int }

    /// Restores the average saved by `checkpointState` (all or nothing).
    func restore(from file: SafeTensorsFile, model: any Module, source: String) throws {
        guard let text = file.metadata[Self.metadataKey],
            let record = try? JSONDecoder().decode(Record.self, from: Data(text.utf8)),
            (0...TrainingCheckpoint.maximumCount).contains(record.updates)
        else {
            throw TrainingError(
                "\(source): the run keeps a weight average (weight_average_decay) but the checkpoint has none, or "
                    + "an unreadable \(Self.metadataKey)")
        }
        let saved = weightAverageState(in: file) ?? [:]
        var restored: [[Float]] = []
        for entry in model.stateEntries() {
            guard let tensor = saved[entry.name], tensor.values.count == entry.tensor.count else {
                throw TrainingError("\(source): the weight average lacks \(entry.name) or has the wrong size")
            }
            restored.append(tensor.values)
        }
        (averages, updates) = (restored, record.updates)
    }
}
