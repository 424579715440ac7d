import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

// Small model files and inputs for the tests of what a model file stores beside its weights (the
// change scale, the change gate).
enum TinyModelFiles {
    /// A fresh folder under the temporary directory (the caller removes it).
    static func temporaryFolder(_ prefix: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// A tiny 32 px model whose head is random (the identity heads start at zero), saved with
    /// `metadata` under a new name in `folder`.
    static func write(_ output: OutputHead, metadata: [String: String], in folder: URL) throws -> URL {
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.inputSize = 32
        configuration.output = output
        let network = try GKNet(configuration: configuration, seed: 4)
        var generator = SplitMix64(seed: 4)
        for (name, parameter) in network.namedParameters() where name.hasPrefix("head.") {
            parameter.data = (0..<parameter.count).map { _ in 0.05 * (2 * generator.nextUniform() - 1) }
        }
        let url = folder.appendingPathComponent("\(output.rawValue)-\(UUID().uuidString).safetensors")
        try Checkpoint.save(network, to: url, configuration: network.configuration, metadata: metadata)
        return url
    }

    /// A smooth composite (ramps, so the network's 32x32 view carries to full size without aliasing)
    /// with a binary box mask.
    static func inputs(width: Int, height: Int) -> (composite: PlanarImage, mask: PlanarImage) {
        var composite = PlanarImage(width: width, height: height, channels: 3)
        var mask = PlanarImage(width: width, height: height, channels: 1)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    composite[c, y, x] = 0.3 + 0.4 * (Float(x) + Float(c * y)) / Float(width + c * height)
                }
                if x >= width / 4 && x < 3 * width / 4 && y >= height / 4 && y < 3 * height / 4 { mask[0, y, x] = 1 }
            }
        }
        return (composite, mask)
    }
}
