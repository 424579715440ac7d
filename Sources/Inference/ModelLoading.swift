// Finding and loading a GKNet checkpoint: an explicit path, or the bundled default model, with the
// shrink of the predicted change stored in its metadata (`gknet calibrate`).
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
        try load(url: try resolve(path: path))
    }

    /// A harmonizer for `path` (nil: the default model) with the model file's change scale.
    /// - Parameter method: nil = the default method of the model's head.
    public static func harmonizer(path: String?, method: FullResolutionMethod? = nil) throws -> Harmonizer {
        let url = try resolve(path: path)
        let file = try SafeTensorsFile(contentsOf: url)
        let model = try GKNet.load(file: file, url: url)
        let scale: Float
        do {
            scale = try changeScale(in: file)
        } catch {
            throw CheckpointError("\(url.path): \(error)")
        }
        return Harmonizer(model: model, method: method, changeScale: scale)
    }

    /// The change scale stored under `Harmonizer.changeScaleKey`: 1 when absent (models made before
    /// `gknet calibrate`).
    /// - Throws: when the value is not a number in 0...1.
    public static func changeScale(in file: SafeTensorsFile) throws -> Float {
        guard let text = file.metadata[Harmonizer.changeScaleKey] else { return 1 }
        guard let value = Float(text.trimmingCharacters(in: .whitespaces)), value >= 0, value <= 1 else {
            throw CheckpointError("\(Harmonizer.changeScaleKey) is \"\(text)\", not a number in 0...1")
        }
        return value
    }

    /// The file `path` names (checked to exist), or the default model's when `path` is nil.
    public static func resolve(path: String?) throws -> URL {
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
        return url
    }

    /// Loads a checkpoint whose configuration travels in its metadata (`gknet.config`), in
    /// evaluation mode (checks: `GKNet.load(checkpoint:)`).
    public static func load(url: URL) throws -> GKNet {
        let model = try GKNet.load(checkpoint: url)
        model.eval()
        return model
    }
}
