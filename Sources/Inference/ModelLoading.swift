// Finding and loading a GKNet checkpoint: an explicit path, or the bundled default model.
import Foundation
import GKNetModel
import NeuralNet
import TensorCore

public enum ModelLoading {
    /// Where the bundled default model is looked for, relative to the repository / install root.
    public static let defaultModelRelativePath = "Models/gknet-default.safetensors"

    /// Candidate locations of the default model: `RuntimeSettings.model`, then next to the
    /// executable (`<exe dir>/../share/gknet/`, `<exe dir>/`), then the source tree's Models/ folder.
    public static func defaultModelCandidates() -> [URL] {
        var candidates: [URL] = []
        if let fromEnvironment = RuntimeSettings.current.model {
            candidates.append(URL(fileURLWithPath: fromEnvironment))
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        candidates.append(
            executable.appendingPathComponent("../share/gknet/gknet-default.safetensors").standardizedFileURL)
        candidates.append(executable.appendingPathComponent("gknet-default.safetensors"))
        // .build/<config>/gknet -> repository root
        var folder = executable
        for _ in 0..<4 {
            candidates.append(folder.appendingPathComponent(defaultModelRelativePath))
            folder = folder.deletingLastPathComponent()
        }
        candidates.append(
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                defaultModelRelativePath))
        return candidates
    }

    /// Loads `path`, or the default model when `path` is nil.
    /// - Throws: a one-line error naming the file (or, for the default, saying to pass --model).
    public static func load(path: String?) throws -> GKNet {
        let url: URL
        if let path {
            url = URL(fileURLWithPath: path)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw CheckpointError("\(url.path): model file does not exist")
            }
        } else {
            guard let found = defaultModelCandidates().first(where: { FileManager.default.fileExists(atPath: $0.path) })
            else {
                throw CheckpointError(
                    "no bundled default model found (looked for \(defaultModelRelativePath) and "
                        + "$\(RuntimeSettings.Variable.model.rawValue)); pass --model PATH with a checkpoint from "
                        + "`gknet train`"
                )
            }
            url = found
        }
        return try load(url: url)
    }

    /// Loads a checkpoint whose configuration travels in its metadata (`gknet.config`), in
    /// evaluation mode (checks: `GKNet.load(checkpoint:)`).
    public static func load(url: URL) throws -> GKNet {
        let model = try GKNet.load(checkpoint: url)
        model.eval()
        return model
    }
}
