// `gknet export --model IN --output OUT [--dtype f16]`: a checkpoint from `gknet train` (training
// or best) as a compact inference model: weights and BatchNorm statistics only (no optimizer
// state), floats stored as F16 by default (a tensor with a value beyond F16's range stays F32), the
// configuration in the metadata. The shipped Models/gknet-default.safetensors is made this way.
import ArgumentParser
import Foundation
import GKNetInference
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTraining

extension GKNetCommand {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a checkpoint as a compact inference model (F16 by default, no optimizer state).")

        @Option(help: "A checkpoint from gknet train (last.safetensors or best.safetensors).")
        var model: String

        @Option(name: [.customShort("o"), .long], help: "The model file to write (.safetensors; written atomically).")
        var output: String

        @Option(help: "Storage of the float tensors: f16, bf16 or f32.")
        var dtype: String = "f16"

        @Flag(
            name: .customLong("weight-average"),
            help: ArgumentHelp(
                "Export the weight average that a training checkpoint keeps (last.safetensors of a run with "
                    + "weight_average_decay) instead of its raw weights."))
        var weightAverage = false

        @Option(help: "A line of text stored under gknet.description in the metadata.")
        var description: String?

        @Option(
            name: .customLong("images-seen"),
            help: "Training images the model has seen, stored under gknet.images_seen (gknet --version prints it).")
        var imagesSeen: Int?

        func validate() throws {
            if let imagesSeen, imagesSeen < 0 { throw ValidationError("--images-seen must be >= 0") }
            guard ["f16", "bf16", "f32"].contains(dtype.lowercased()) else {
                throw ValidationError("--dtype must be f16, bf16 or f32")
            }
            guard URL(fileURLWithPath: output).standardizedFileURL != URL(fileURLWithPath: model).standardizedFileURL
            else {
                throw ValidationError("--output must differ from --model")
            }
        }

        func run() throws {
            let source = URL(fileURLWithPath: model)
            let network = try ModelLoading.load(url: source)
            let file = try SafeTensorsFile(contentsOf: source)
            if weightAverage {
                guard let average = weightAverageState(in: file) else {
                    throw CheckpointError(
                        "\(model): holds no weight average (only last.safetensors of a run with weight_average_decay "
                            + "keeps one; its best.safetensors already is the average)")
                }
                do { try network.load(stateDictionary: average, strict: true) } catch {
                    throw CheckpointError("\(model): its weight average does not match the model: \(error)")
                }
            }
            var metadata: [String: String] = [
                "gknet.exported_from": source.lastPathComponent + (weightAverage ? " (weight average)" : "")
            ]
            if let description { metadata["gknet.description"] = description }
            for key in [ModelIdentity.imagesSeenKey] { if let value = file.metadata[key] { metadata[key] = value } }
            if let imagesSeen { metadata[ModelIdentity.imagesSeenKey] = String(imagesSeen) }
            // a fitted shrink of the change and a change gate (gknet calibrate) travel with the weights
            for key in [
                Harmonizer.changeScaleKey, Harmonizer.changeScaleFitKey, ChangeGate.metadataKey, ChangeGate.fitKey,
            ] {
                if let value = file.metadata[key] { metadata[key] = value }
            }
            let step = file.metadata[Checkpoint.stepKey].flatMap { Int($0) }
            let storage = SafeTensorsDType(rawValue: dtype.uppercased())!
            try Checkpoint.save(
                network, to: URL(fileURLWithPath: output), dtype: storage, configuration: network.configuration,
                step: step, metadata: metadata)
            let widened = storage == .f16 ? network.tensorsWidenedFromF16 : []
            if !widened.isEmpty {
                print(
                    "kept as F32 (a value beyond F16's range, which would become infinity): "
                        + widened.joined(separator: ", "))
            }
            let bytes = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            print(
                "wrote \(output): \(network.parameterCount) parameters as \(dtype.uppercased()), \(bytes / 1024) KiB"
                    + "\(step.map { ", step \($0)" } ?? "")"
            )
        }
    }
}
