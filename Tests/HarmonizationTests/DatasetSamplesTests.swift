import Foundation
import GKNetDatasets
import GKNetTestSupport
import Testing

/// The committed Samples/ dataset stays loadable in both list styles.
@Suite struct DatasetSamplesTests {
    @Test func samplesLoadInBothListStyles() throws {
        let root = Fixtures.repositoryRoot.appendingPathComponent("Samples")
        let combined = try HarmonizationDataset(root: root, split: .train)
        let subset = try HarmonizationDataset(root: root.appendingPathComponent("HGCompris"), split: .train)
        #expect(combined.count == 6 && subset.count == 6)
        #expect(combined.samples.map(\.composite) == subset.samples.map(\.composite))
        #expect(try HarmonizationDataset(root: root, split: .test).count == 2)
        let sample = try combined.load(0)
        #expect(max(sample.width, sample.height) == 320)
    }
}
