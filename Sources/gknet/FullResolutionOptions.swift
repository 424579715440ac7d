import ArgumentParser
import Inference

/// The options that choose how the network's 256x256 colour change reaches full resolution,
/// shared by `gknet harmonize` and `gknet evaluate --resolution full`.
struct FullResolutionOptions: ParsableArguments {
    @Option(
        help:
            ArgumentHelp(
                "How the 256x256 colour change reaches full resolution: local-affine, upsampled-residual, "
                    + "naive-upsampling or (affine-head models) upsampled-transform. Default: upsampled-transform for "
                    + "affine-head models, local-affine otherwise.")
    )
    var method: String?

    @Option(
        name: .customLong("affine-grid"),
        help: "With --method local-affine: cells per side of the grid of colour transforms.")
    var affineGrid: Int?

    @Option(
        name: .customLong("affine-regularization"),
        help: "With --method local-affine: ridge weight pulling each cell's transform toward the global one.")
    var affineRegularization: Float?

    func validate() throws {
        if let method, FullResolutionMethod(rawValue: method) == nil {
            throw ValidationError(
                "--method must be one of \(FullResolutionMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let affineGrid, !(1...64).contains(affineGrid) { throw ValidationError("--affine-grid must be in 1...64") }
        if let affineRegularization, !(affineRegularization >= 0 && affineRegularization.isFinite) {
            throw ValidationError("--affine-regularization must be a finite number >= 0")
        }
    }

    /// A harmonizer for the checkpoint at `modelPath` (nil: the default model) with these settings
    /// and the model file's change scale (`gknet calibrate`).
    func harmonizer(modelPath: String?) throws -> Harmonizer {
        let chosen = method.flatMap { FullResolutionMethod(rawValue: $0) }
        let harmonizer = try ModelLoading.harmonizer(path: modelPath, method: chosen)
        if chosen == .upsampledTransform && harmonizer.model.configuration.output != .affine {
            throw ValidationError(
                "--method upsampled-transform needs a model with the affine head; this one has the "
                    + "\(harmonizer.model.configuration.output.rawValue) head"
            )
        }
        if let affineGrid { harmonizer.affineSettings.gridSize = affineGrid }
        if let affineRegularization { harmonizer.affineSettings.regularization = affineRegularization }
        return harmonizer
    }
}
