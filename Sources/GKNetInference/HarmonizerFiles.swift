// The library's entry points for other Swift packages: load the bundled model or a file, then
// harmonize files, encoded images in memory, or planar images (`Harmonizer.harmonize`, the one
// path). Errors are typed: `CheckpointError` (model file), `ImageCodecError` (an image file or
// upload), `HarmonizeError` (the inputs do not fit together, or an output path is wrong); each
// prints as one line naming the file.
import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet

extension Harmonizer {
    /// The bundled default model (`Models/gknet-default.safetensors`, found as described in
    /// ``ModelLoading/defaultModelCandidates()``) with its stored change scale.
    /// - Throws: `CheckpointError` when it cannot be found or read.
    public static func bundled(options: Options = Options()) throws -> Harmonizer {
        try ModelLoading.harmonizer(path: nil, options: options)
    }

    /// A model file from `gknet train`, `gknet export` or `gknet calibrate`, with its stored change scale.
    /// - Throws: `CheckpointError` naming the file.
    public static func load(contentsOf url: URL, options: Options = Options()) throws -> Harmonizer {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw CheckpointError("\(url.path): model file does not exist")
        }
        return try ModelLoading.harmonizer(url: url, options: options)
    }

    /// Harmonizes a composite file with its mask file and writes the result (PNG keeps the
    /// composite's bit depth and alpha; .jpg is accepted). Nothing is left behind on failure.
    /// - Parameters:
    ///   - compositeFile: PNG or JPEG, 8 or 16 bits, with or without alpha.
    ///   - maskFile: white = the region to harmonize (rules: `PlanarImage.userMask`).
    ///   - output: nil = `<composite stem>_harmonized.png` next to the composite.
    ///   - options: decoding limits, mask resizing, PNG level and the harmonization options.
    /// - Returns: what was written, with notes about how the inputs were read.
    public func harmonize(
        compositeFile: URL, maskFile: URL, output: URL? = nil, options: HarmonizeOptions = HarmonizeOptions()
    ) throws -> HarmonizeReport {
        try HarmonizeJob.run(
            HarmonizeRequest(composite: compositeFile, mask: maskFile, output: output), harmonizer: self,
            options: options)
    }

    /// Harmonizes encoded images in memory (PNG or JPEG, read by the same rules as files) into an
    /// encoded result in `format`.
    /// - Returns: the encoded image and notes about how the inputs were read.
    public func harmonize(
        compositeData: Data, maskData: Data, format: ImageFormat = .png, options: HarmonizeOptions = HarmonizeOptions()
    ) throws -> (data: Data, warnings: [String]) {
        let input = try HarmonizeJob.readInput(
            compositeData: compositeData, compositeName: "composite", maskData: maskData, maskName: "mask",
            options: options)
        var clock = StageClock()
        let result = try HarmonizeJob.harmonize(input, harmonizer: self, options: options, clock: &clock)
        let data = try HarmonizeJob.encodeOutput(
            result, input: input, format: format, options: options, path: "result")
        return (data, input.warnings)
    }
}
