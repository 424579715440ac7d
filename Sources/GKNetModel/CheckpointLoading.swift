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
    /// and its parameter count (`GKNetConfiguration.parameterCount`) must not exceed the values the
    /// file holds (so a damaged or hostile `gknet.config` cannot make us build a model far larger
    /// than the file).
    /// Errors are `CheckpointError`s that start with the path and name the problem.
    public static func load(checkpoint url: URL) throws -> GKNet {
        try load(file: try SafeTensorsFile(contentsOf: url), url: url)  // its errors start with the path
    }

    /// `load(checkpoint:)` for a file already read from `url` (named in the errors).
    public static func load(file: SafeTensorsFile, url: URL) throws -> GKNet {
        let weights = file.tensors.filter { !TrainingCheckpoint.isTrainingState($0.key) }
        let configuration: GKNetConfiguration
        do {
            guard let stored = try Checkpoint.configuration(GKNetConfiguration.self, in: file) else {
                throw CheckpointError("no \(Checkpoint.configurationKey) metadata: not a GKNet checkpoint")
            }
            configuration = stored
            try configuration.validate()
            let expected = configuration.parameterCount
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

extension GKNetConfiguration {
    /// The parameters of a GKNet of this configuration, computed without building it.
    ///
    /// NOTE: the one count kept analytic (ModelInspection counts from the model itself): a
    /// checkpoint's configuration must be checked before the model is allocated, so a hostile
    /// `gknet.config` cannot make us build a model far larger than the file. The tests compare it
    /// with the real model's `parameterCount` for the presets and every ablation.
    public var parameterCount: Int {
        func conv(_ input: Int, _ output: Int, _ k: Int, bias: Bool = false) -> Int {
            input * output * k * k + (bias ? output : 0)
        }
        func linear(_ input: Int, _ output: Int, bias: Bool = true) -> Int { input * output + (bias ? output : 0) }
        func convNorm(_ input: Int, _ output: Int, _ k: Int) -> Int { conv(input, output, k) + 2 * output }
        let c = [4] + encoderWidths  // c[l] = C_l, c[0] = input channels
        let d = lreWidth
        var total = (1...4).reduce(0) { $0 + convNorm(c[$1 - 1], c[$1], 4) + 2 * convNorm(c[$1], c[$1], 3) }
        total += conv(c[4], d, 1, bias: true)  // LRE projection
        if useLRE {
            let hidden = lreMLPRatio * d
            let block = 2 * d + linear(d, 3 * d) + linear(d, d) + 2 * d + linear(d, hidden) + linear(hidden, d)
            total += positionGrid * positionGrid * d + lreDepth * block + 2 * d
        }
        var previous = d
        for level in kernelLevelList {
            let cl = c[level]
            total += convNorm(previous, cl, 3) + convNorm(2 * cl, cl, 1)
            if useSCF {
                let (a, z) = (scfAttentionWidth, squeezeWidth(channels: cl))
                total += conv(cl, a, 1, bias: true) + linear(d, a, bias: false) + linear(d, cl)
                total += conv(cl, cl, 1, bias: true) + linear(cl, z) + linear(z, 2 * cl)
            } else {
                total += convNorm(cl + d, cl, 1)
            }
            if useKernelModulation {
                total +=
                    conv(cl, cl, 3, bias: true)
                    + conv(cl, kernelGroups(channels: cl) * kernelSize * kernelSize, 1, bias: true)
            }
            previous = cl
        }
        total += convNorm(c[4] + d, c[4], 1)  // decoder bottleneck
        total += [3, 2, 1].reduce(0) { $0 + convNorm(c[$1 + 1], c[$1], 4) + convNorm(c[$1], c[$1], 3) }
        total += convNorm(c[1], decoderOutputWidth, 4) + conv(decoderOutputWidth, decoderOutputWidth, 3, bias: true)
        total += conv(decoderOutputWidth, output.channels, 1, bias: true)
        if outputBlend == .learned { total += conv(decoderOutputWidth, 1, 1, bias: true) }
        return total
    }
}
