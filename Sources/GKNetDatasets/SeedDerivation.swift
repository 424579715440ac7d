// Deterministic seeds for every random choice of data loading and synthesis, derived from the
// user's seed and the coordinates of the choice, so results never depend on timing or order.
import GKNetTensorCore

/// Seeds derived by hashing (seed, coordinates...) with SplitMix64 steps.
public enum DerivedSeed {
    /// A seed for the choice at `coordinates` under `seed` (e.g. (seed, epoch, sample index)).
    public static func make(_ seed: UInt64, _ coordinates: UInt64...) -> UInt64 {
        var hash = seed
        for value in coordinates {
            var generator = SplitMix64(seed: hash ^ (value &* 0x9E37_79B9_7F4A_7C15))
            hash = generator.next()
        }
        return hash
    }

    /// A generator for the choice at `coordinates` under `seed`.
    public static func generator(_ seed: UInt64, _ coordinates: UInt64...) -> SplitMix64 {
        var hash = seed
        for value in coordinates {
            var generator = SplitMix64(seed: hash ^ (value &* 0x9E37_79B9_7F4A_7C15))
            hash = generator.next()
        }
        return SplitMix64(seed: hash)
    }

    /// A stable 64-bit hash of a string (FNV-1a), for seeding by name rather than by position.
    public static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01B3
        }
        return hash
    }
}

extension SplitMix64 {
    /// A uniform float in `range`.
    public mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextUniform()
    }

    /// A uniform integer in `0..<count` (count > 0).
    public mutating func index(below count: Int) -> Int {
        Int(next() % UInt64(count))
    }

    /// True with probability `probability`.
    public mutating func chance(_ probability: Float) -> Bool {
        nextUniform() < probability
    }
}
