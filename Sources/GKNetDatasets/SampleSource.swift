// What a `BatchLoader` reads from: a dataset split here, a photo collection in Synthesis.
import GKNetImageCodec

/// Anything a `BatchLoader` can read samples from: a dataset split, or a collection of photos.
public protocol SampleSource: Sendable {
    var count: Int { get }
    /// Decodes sample `index` (0..<count).
    func load(_ index: Int, limits: DecodeLimits) throws -> Sample
    /// Names the source in error messages ("data/HGCompris (train split)").
    var sourceDescription: String { get }
}

extension HarmonizationDataset: SampleSource {
    public var sourceDescription: String { "\(root.path) (\(split.rawValue) split)" }
}
