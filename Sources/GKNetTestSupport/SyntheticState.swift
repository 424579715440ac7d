// A model state computed from each tensor's name and shape, so a fixture can check a large model
// against its PyTorch twin without committing its weights (Scripts/fixtures/model_gknet_presets.py
// computes the same values bit for bit with numpy; its docstring has the rules).
import GKNetTensorCore

public enum SyntheticState {
    /// FNV-1a (64-bit) of the name's UTF-8 bytes.
    public static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    /// `count` values u in [-1, 1): 2 * (24 bits of SplitMix64(seed)) * 2^-24 - 1, exactly.
    public static func uniformStream(seed: UInt64, count: Int) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in 2 * generator.nextUniform() - 1 }
    }

    /// The values of the tensor `name` with `shape` (Float arithmetic, as numpy float32 does it).
    public static func values(name: String, shape: [Int], seed: UInt64) -> [Float] {
        let u = uniformStream(seed: fnv1a64(name) ^ seed, count: shape.reduce(1, *))
        if name.hasSuffix("running_mean") { return u.map { Float(0.1) * $0 } }
        if name.hasSuffix("running_var") { return u.map { 1 + Float(0.5) * $0 } }
        if name.contains("position_embedding") { return u.map { Float(0.02) * $0 } }
        if name.hasSuffix("weight") && shape.count >= 2 {
            let bound = Float((3.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot())
            return u.map { bound * $0 }
        }
        if name.hasSuffix("weight") { return u.map { 1 + Float(0.1) * $0 } }
        if name.hasSuffix("bias") { return u.map { Float(0.05) * $0 } }
        return u.map { Float(0.1) * $0 }
    }

    /// Overwrites every tensor but `num_batches_tracked` counters with its synthetic values.
    public static func apply(to tensors: [(String, Tensor)], seed: UInt64) {
        for (name, tensor) in tensors where !name.hasSuffix("num_batches_tracked") {
            tensor.data = values(name: name, shape: tensor.shape, seed: seed)
        }
    }

    /// The indices `gradsample.<name>` holds: k = min(count, samples), j * count / k for j < k.
    public static func sampleIndices(count: Int, samples: Int = 64) -> [Int] {
        let k = min(count, samples)
        return (0..<k).map { $0 * count / k }
    }
}
