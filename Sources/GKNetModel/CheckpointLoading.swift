// Loading a GKNet from a checkpoint whose configuration travels in its metadata (`gknet.config`),
// checked before anything is allocated for the model.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore

extension GKNet {
    /// A GKNet built from a checkpoint's `gknet.config` metadata with its weights loaded (strict:
    /// every parameter and buffer present with its shape; optimizer state is ignored). The model
    /// is in training mode; callers that run inference switch it to `eval()`.
    ///
    /// The configuration is checked before anything is allocated for the model: it must be valid,
    /// and its analytic parameter count must not exceed the values the file holds (so a damaged
    /// or hostile `gknet.config` cannot make us build a model far larger than the file).
    /// Errors are `CheckpointError`s that start with the path and name the problem.
    public static func load(checkpoint url: URL) throws -> GKNet {
        try load(file: try SafeTensorsFile(contentsOf: url), url: url)  // its errors start with the path
    }

    /// `load(checkpoint:)` for a file already read from `url` (named in the errors).
    public static func load(file: SafeTensorsFile, url: URL) throws -> GKNet {
        let weights = file.tensors.filter { !$0.key.hasPrefix(TrainingCheckpoint.optimizerPrefix) }
        let configuration: GKNetConfiguration
        do {
            guard let stored = try Checkpoint.configuration(GKNetConfiguration.self, in: file) else {
                throw CheckpointError("no \(Checkpoint.configurationKey) metadata: not a GKNet checkpoint")
            }
            configuration = stored
            let expected = try ModelInspection(configuration: configuration).totalParameters
            let held = weights.values.reduce(0) { $0 + $1.values.count }
            guard expected <= held else {
                throw CheckpointError(
                    "its \(Checkpoint.configurationKey) describes a model of \(expected) parameters but the file "
                        + "holds only \(held) weight values (damaged metadata or weights?)"
                )
            }
        } catch {
            throw CheckpointError("\(url.path): \(error)")
        }
        let model: GKNet
        do {
            model = try GKNet(configuration: configuration)
            try model.load(stateDictionary: weights, strict: true)
        } catch {
            throw CheckpointError("\(url.path): weights do not match its \(Checkpoint.configurationKey): \(error)")
        }
        return model
    }
}
