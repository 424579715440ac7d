// `gknet inspect (--config NAME | --model PATH) [--size N]`: parameters and MACs per block of a
// GKNet (ModelInspection: parameters from the modules, MACs traced from a forward pass; equal to
// Scripts/reference/count_macs.py's counts, tested) and the peak
// tensor memory of one inference forward at that size, measured by running it.
import ArgumentParser
import Dispatch
import Foundation
import GKNetInference
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

extension GKNetCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print parameters and MACs per block and the peak activation memory of a forward pass.",
            discussion: """
                MACs count convolutions, transposed convolutions, linears, attention matmuls and the \
                harmony-kernel DynConv (element-wise ops, norms, resizes and softmax are not counted). \
                The peak memory is measured: one batch-1 inference forward (no gradient recording) runs \
                at the given size and the largest total of live tensor storage is reported (weights and \
                the input excluded).
                """)

        @Option(
            name: .long,
            help: ArgumentHelp("A preset (paper, small, tiny) or a configuration JSON file.", valueName: "NAME"))
        var config: String?

        @Option(
            name: .long,
            help: ArgumentHelp(
                "A checkpoint (.safetensors with gknet.config metadata); its weights are loaded and checked.",
                valueName: "PATH"))
        var model: String?

        @Option(name: .long, help: "Square input size in pixels (a multiple of 16).")
        var size: Int = 256

        @Flag(name: .long, help: "Skip the forward pass (no memory measurement).")
        var noForward = false

        func validate() throws {
            guard (config == nil) != (model == nil) else {
                throw ValidationError("give exactly one of --config NAME and --model PATH")
            }
            guard size >= 16, size % 16 == 0, size <= 4096 else {
                throw ValidationError("--size must be a multiple of 16 in 16...4096, is \(size)")
            }
        }

        func run() throws {
            let source: String
            let network: GKNet?
            let configuration: GKNetConfiguration
            if let model {
                let loaded = try GKNet.load(checkpoint: URL(fileURLWithPath: model))
                (network, configuration, source) = (loaded, loaded.configuration, model)
            } else {
                (configuration, source) = try Self.configuration(named: config!)
                network = nil
            }
            let inspection: ModelInspection
            do {
                inspection = try ModelInspection(configuration: configuration, height: size, width: size)
            } catch {
                throw InspectError("\(source): \(error)")
            }
            print("GKNet \(source) at \(size)x\(size)")
            print(inspection.table())
            print("")
            var summary = inspection.summary
            if let target = Self.designTargets[source], size == 256 {
                let parameters = Double(inspection.totalParameters) / 1e6, gmac = Double(inspection.totalMACs) / 1e9
                summary +=
                    " (design targets \(target.parameters) M, \(target.gmac) GMAC: "
                    + "\(Self.signedPercent(parameters / target.parameters - 1)), "
                    + "\(Self.signedPercent(gmac / target.gmac - 1)))"
            }
            print(summary)
            if let network {
                // The loaded weights were checked by name and shape; say that they add up too.
                let counts = inspection.parameterCounts(of: network)
                let loaded = network.parameterCount
                guard loaded == inspection.totalParameters, counts[""] == nil else {
                    throw InspectError(
                        "\(source): the checkpoint has \(loaded) parameters, its configuration implies "
                            + "\(inspection.totalParameters)"
                    )
                }
                print("weights: \(ModelInspection.grouped(loaded)) parameters loaded from \(source)")
                let metadata = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: source)).metadata
                if let scale = metadata[Harmonizer.changeScaleKey] {
                    let fit = metadata[Harmonizer.changeScaleFitKey].map { " (\($0))" } ?? ""
                    print("change scale: \(scale)\(fit)")
                }
                if let gate = try ChangeGate.stored(in: metadata) {
                    let fit = metadata[ChangeGate.fitKey].map { " (\($0))" } ?? ""
                    let kept = gate.keep == .whole ? "the whole change" : "a share g of the change"
                    let features = "\(ChangeGate.featureCount) features"
                    print("change gate: threshold \(gate.threshold), keeps \(kept), \(features)\(fit)")
                }
            }
            guard !noForward else { return }
            let measured = try network ?? GKNet(configuration: configuration)
            let start = DispatchTime.now().uptimeNanoseconds
            let peak = measured.peakForwardBytes(batch: 1, height: size, width: size, training: false)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(
                "peak activation memory (inference forward, batch 1, \(size)x\(size)): "
                    + "\(ModelInspection.mebibytes(peak)) (\(ModelInspection.grouped(peak)) bytes; forward took "
                    + "\(ModelInspection.fixed(seconds, 2)) s)"
            )
        }

        /// Parameters (M) and GMAC at 256x256 the presets were defined with (docs/model.md, "Size and cost").
        static let designTargets: [String: (parameters: Double, gmac: Double)] = [
            "paper": (18.73, 19.2), "small": (4.31, 5.0), "tiny": (1.09, 1.42),
        ]

        static func signedPercent(_ fraction: Double) -> String {
            (fraction >= 0 ? "+" : "") + ModelInspection.fixed(100 * fraction, 2) + " %"
        }

        /// A preset by name, else a JSON configuration file.
        static func configuration(named name: String) throws -> (GKNetConfiguration, String) {
            if GKNetConfiguration.presetNames.contains(name) {
                return (try GKNetConfiguration.preset(name), name)
            }
            let url = URL(fileURLWithPath: name)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw InspectError(
                    "\(name): not a preset (\(GKNetConfiguration.presetNames.joined(separator: ", "))) and no such file"
                )
            }
            do {
                let configuration = try JSONDecoder().decode(GKNetConfiguration.self, from: Data(contentsOf: url))
                try configuration.validate()
                return (configuration, name)
            } catch let error as DecodingError {
                throw InspectError("\(name): not a GKNet configuration JSON (\(Self.describe(error)))")
            } catch {
                throw InspectError("\(name): \(error)")
            }
        }

        private static func describe(_ error: DecodingError) -> String {
            switch error {
            case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context),
                .valueNotFound(_, let context):
                let path = context.codingPath.map(\.stringValue).joined(separator: ".")
                return (path.isEmpty ? "" : path + ": ") + context.debugDescription
            @unknown default:
                return "\(error)"
            }
        }
    }
}

/// A one-line error of `gknet inspect`.
struct InspectError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
