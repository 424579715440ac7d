import ArgumentParser
import GKNetInference

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

    @Flag(
        name: .customLong("no-change-gate"),
        help: "Ignore the model file's per-image change gate (gknet calibrate --gate): the network's change as it is.")
    var noChangeGate = false

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

    /// These settings as harmonizer options (nil fields: the model's defaults).
    var harmonizerOptions: Harmonizer.Options {
        var options = Harmonizer.Options(method: method.flatMap { FullResolutionMethod(rawValue: $0) })
        if let affineGrid { options.affineSettings.gridSize = affineGrid }
        if let affineRegularization { options.affineSettings.regularization = affineRegularization }
        if noChangeGate { options.useChangeGate = false }
        return options
    }

    /// A harmonizer for the checkpoint at `modelPath` (nil: the default model) with these settings
    /// as its options and the model file's change scale and gate (`gknet calibrate`).
    func harmonizer(modelPath: String?) throws -> Harmonizer {
        let options = harmonizerOptions
        let harmonizer = try ModelLoading.harmonizer(path: modelPath, options: options)
        if options.method == .upsampledTransform && harmonizer.model.configuration.output != .affine {
            throw ValidationError(
                "--method upsampled-transform needs a model with the affine head; this one has the "
                    + "\(harmonizer.model.configuration.output.rawValue) head"
            )
        }
        return harmonizer
    }
}
