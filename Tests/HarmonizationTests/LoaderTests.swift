import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetTensorCore
import Testing

@Suite struct LoaderTests {
    func batches(_ loader: BatchLoader, _ count: Int) throws -> [Batch] {
        try (0..<count).map { _ in try #require(try loader.next()) }
    }

    func same(_ a: [Batch], _ b: [Batch]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { x, y in
                x.composites.data == y.composites.data && x.masks.data == y.masks.data
                    && x.targets.data == y.targets.data
                    && x.references == y.references
            }
    }

    var dataset: HarmonizationDataset {
        get throws { try HarmonizationDataset(root: DatasetFixtures.ihd, split: .train) }
    }
    let augmentation = TrainingAugmentation(width: 12, height: 10)

    @Test func sameSeedSameBatchesWhateverTheTiming() throws {
        let options = LoaderOptions(batchSize: 2, seed: 5)
        var serial = options
        serial.prefetch = false
        serial.parallelDecode = false
        let a = try batches(BatchLoader(dataset: try dataset, transform: augmentation, options: options), 5)
        let b = try batches(BatchLoader(dataset: try dataset, transform: augmentation, options: serial), 5)
        #expect(same(a, b))
        #expect(a[0].composites.shape == [2, 3, 10, 12])
        var other = options
        other.seed = 6
        let c = try batches(BatchLoader(dataset: try dataset, transform: augmentation, options: other), 5)
        #expect(!same(a, c))
    }

    /// The ranks of a data-parallel run: part i of n of every batch, same order and augmentation,
    /// so the parts side by side are the whole batch.
    @Test func batchPartsTogetherAreTheWholeBatch() throws {
        let options = LoaderOptions(batchSize: 2, seed: 3)
        let whole = try batches(BatchLoader(dataset: try dataset, transform: augmentation, options: options), 3)
        let parts = try (0..<2).map { index in
            var partOptions = options
            partOptions.batchPart = try DatasetShard(index: index, count: 2)
            return try batches(BatchLoader(dataset: try dataset, transform: augmentation, options: partOptions), 3)
        }
        for (step, batch) in whole.enumerated() {
            let (first, second) = (parts[0][step], parts[1][step])
            #expect(first.composites.shape == [1, 3, 10, 12] && second.composites.shape == [1, 3, 10, 12])
            #expect(first.references + second.references == batch.references, "batch \(step): samples differ")
            #expect(first.composites.data + second.composites.data == batch.composites.data)
            #expect(first.targets.data + second.targets.data == batch.targets.data)
            #expect(first.masks.data + second.masks.data == batch.masks.data)
        }
    }

    @Test func savedStateResumesExactly() throws {
        let options = LoaderOptions(batchSize: 2, seed: 9)
        let loader = BatchLoader(dataset: try dataset, transform: augmentation, options: options)
        let all = try batches(loader, 6)
        let resumed = BatchLoader(dataset: try dataset, transform: augmentation, options: options)
        _ = try batches(resumed, 2)
        let saved = resumed.state
        let data = try JSONEncoder().encode(saved)
        let restored = BatchLoader(
            dataset: try dataset, transform: augmentation, options: options,
            state: try JSONDecoder().decode(LoaderState.self, from: data))
        #expect(same(try batches(restored, 4), Array(all[2...])))
        // restore() on a running loader discards its prefetched batch
        resumed.restore(LoaderState(epoch: 0, position: 0))
        #expect(same(try batches(resumed, 2), Array(all[0..<2])))
    }

    @Test func epochsArePermutationsAndDropTheRemainder() throws {
        let loader = BatchLoader(
            dataset: try dataset, transform: augmentation, options: LoaderOptions(batchSize: 2, seed: 1))
        #expect(loader.batchesPerEpoch == 1)
        for epoch in 0..<4 { #expect(loader.order(epoch: epoch).sorted() == [0, 1, 2]) }
        _ = try batches(loader, 1)
        #expect(loader.state == LoaderState(epoch: 1, position: 0))
    }

    @Test func evaluationPassKeepsOrderAndTheLastPartialBatch() throws {
        let loader = BatchLoader(
            dataset: try dataset, transform: ResizeTransform(width: 8, height: 6), options: .evaluation(batchSize: 2))
        let first = try #require(try loader.next())
        let second = try #require(try loader.next())
        #expect(try loader.next() == nil)
        #expect(
            first.references.map(\.name) + second.references.map(\.name) == ["a1_1_1.jpg", "a1_1_2.jpg", "b7_1_1.jpg"])
        #expect(second.count == 1)
    }

    @Test func unreadableSampleErrorsNameTheFile() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("HAlpha")
        try FileManager.default.copyItem(at: DatasetFixtures.ihd.appendingPathComponent("HAlpha"), to: copy)
        let real = copy.appendingPathComponent("real_images/a1.jpg")
        let bytes = try Data(contentsOf: real)
        try bytes.prefix(bytes.count / 2).write(to: real)
        let loader = BatchLoader(
            dataset: try HarmonizationDataset(root: copy, split: .train), transform: augmentation,
            options: LoaderOptions(batchSize: 2))
        do {
            _ = try loader.next()
            Issue.record("a truncated image loaded")
        } catch let error as ImageCodecError {
            #expect(error.kind == .truncated && error.path.hasSuffix("a1.jpg"), "\(error)")
        }
    }

    @Test func fewerSamplesThanOneBatchIsAnError() throws {
        let loader = BatchLoader(dataset: try dataset, transform: augmentation, options: LoaderOptions(batchSize: 5))
        #expect(throws: DatasetError.self) { try loader.next() }
    }
}
