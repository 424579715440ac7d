// Seeded random numbers: SplitMix64 for the stream, Box-Muller for normals.
import Foundation

/// A small, fast, seedable generator (SplitMix64). Its whole state is one `UInt64`, so it can be
/// saved in a checkpoint and restored exactly.
public struct SplitMix64: RandomNumberGenerator, Codable, Sendable, Equatable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box-Muller, one of the pair is discarded for simplicity).
    public mutating func nextNormal() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Uniform samples in [low, high).
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, generator: inout SplitMix64, requiresGrad: Bool = false
    ) -> Tensor {
        var values = [Float](repeating: 0, count: shape.elementCount)
        for i in values.indices { values[i] = low + (high - low) * generator.nextUniform() }
        return Tensor(shape: shape, data: values, requiresGrad: requiresGrad)
    }

    /// Normal samples with the given mean and standard deviation.
    public static func normal(
        _ shape: [Int], mean: Float = 0, std: Float = 1, generator: inout SplitMix64, requiresGrad: Bool = false
    ) -> Tensor {
        var values = [Float](repeating: 0, count: shape.elementCount)
        for i in values.indices { values[i] = mean + std * generator.nextNormal() }
        return Tensor(shape: shape, data: values, requiresGrad: requiresGrad)
    }
}
