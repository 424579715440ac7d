// Finding and loading a GKNet checkpoint: an explicit path, or the bundled default model, with the
// shrink of the predicted change stored in its metadata (`gknet calibrate`).
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

public enum ModelLoading {
    /// Where the bundled default model is looked for, relative to the repository / install root.
    public static let defaultModelRelativePath = "Models/gknet-default.safetensors"

    /// File name of the bundled default model.
    public static let defaultModelFileName = "gknet-default.safetensors"

    /// Candidate locations of the default model, in order: `RuntimeSettings.model`
    /// ($GKNET_MODEL); next to the executable (`<exe dir>/../share/gknet/`, where `make install`
    /// puts it, and `<exe dir>/`); the package resource of this module (the resource bundle that
    /// SwiftPM copies next to every executable linking the library, found without `Bundle.module`,
    /// which stops the process when its bundle is missing); the source tree's Models/ folder above
    /// the executable (a build in the repository); Models/ in the working folder.
    public static func defaultModelCandidates() -> [URL] {
        var candidates: [URL] = []
        if let fromEnvironment = RuntimeSettings.current.model {
            candidates.append(URL(fileURLWithPath: fromEnvironment))
        }
        var folders: [URL] = []
        for executable in [Bundle.main.executableURL, URL(fileURLWithPath: CommandLine.arguments.first ?? ".")] {
            guard let executable else { continue }
            let folder = executable.resolvingSymlinksInPath().deletingLastPathComponent().standardizedFileURL
            if !folders.contains(folder) { folders.append(folder) }
        }
        for folder in folders {
            candidates.append(
                folder.appendingPathComponent("../share/gknet/\(defaultModelFileName)").standardizedFileURL)
            candidates.append(folder.appendingPathComponent(defaultModelFileName))
        }
        for folder in folders { candidates += resourceCandidates(in: folder) }
        for var folder in folders {
            // .build/<triple>/<config>/gknet -> repository root
            for _ in 0..<5 {
                candidates.append(folder.appendingPathComponent(defaultModelRelativePath))
                folder = folder.deletingLastPathComponent()
            }
        }
        candidates.append(
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                defaultModelRelativePath))
        return candidates
    }

    /// This module's name ("Inference", or its prefixed name after a rename).
    static let moduleName = String(String(reflecting: Harmonizer.self).split(separator: ".").first ?? "Inference")

    /// The default model inside this module's resource bundles in `folder`
    /// (`<package>_<module>.resources/`, the package's name depending on how it was added).
    static func resourceCandidates(in folder: URL) -> [URL] {
        let suffix = "_\(moduleName).resources"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(suffix) }.sorted().map {
            folder.appendingPathComponent($0).appendingPathComponent(defaultModelFileName)
        }
    }

    /// The bundled default model's file (as `resolve(path: nil)`).
    /// - Throws: `CheckpointError` when no candidate exists.
    public static func defaultModelURL() throws -> URL { try resolve(path: nil) }

    /// Loads `path`, or the default model when `path` is nil.
    /// - Throws: a one-line error naming the file (or, for the default, saying to pass --model).
    public static func load(path: String?) throws -> GKNet {
        try load(url: try resolve(path: path))
    }

    /// A harmonizer for `path` (nil: the default model) with the model file's change scale.
    /// - Parameters:
    ///   - path: a model file; nil = the bundled default model.
    ///   - method: nil = the default method of the model's head.
    ///   - options: the harmonizer's defaults for every call (its method wins over `method`).
    public static func harmonizer(
        path: String?, method: FullResolutionMethod? = nil, options: Harmonizer.Options = Harmonizer.Options()
    ) throws -> Harmonizer {
        try harmonizer(url: try resolve(path: path), method: method, options: options)
    }

    /// A harmonizer for the model file at `url` with its stored change scale and change gate.
    public static func harmonizer(
        url: URL, method: FullResolutionMethod? = nil, options: Harmonizer.Options = Harmonizer.Options()
    ) throws -> Harmonizer {
        let file = try SafeTensorsFile(contentsOf: url)
        let model = try GKNet.load(file: file, url: url)
        let scale: Float
        let gate: ChangeGate?
        do {
            scale = try changeScale(in: file)
            gate = try ChangeGate.stored(in: file.metadata)
        } catch {
            throw CheckpointError("\(url.path): \(error)")
        }
        return Harmonizer(model: model, method: method, changeScale: scale, changeGate: gate, options: options)
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
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw CheckpointError("\(url.path): is a folder, not a model file")
            }
        } else {
            guard let found = defaultModelCandidates().first(where: { FileManager.default.fileExists(atPath: $0.path) })
            else {
                throw CheckpointError(
                    "no bundled default model found (looked for $\(RuntimeSettings.Variable.model.rawValue), "
                        + "share/gknet/\(defaultModelFileName) beside the executable's folder, the package resource "
                        + "and \(defaultModelRelativePath)); pass --model PATH with a checkpoint from `gknet train`, "
                        + "or install with `make install`"
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
