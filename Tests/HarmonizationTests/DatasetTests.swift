import Foundation
import GKNetDatasets
import GKNetImageCodec
import GKNetTestSupport
import Testing

enum DatasetFixtures {
    static var ihd: URL { Fixtures.url("datasets/ihd") }
    static var missingMask: URL { Fixtures.url("datasets/missing_mask") }

    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-harmonization-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite struct DatasetTests {
    @Test func rootWithCombinedLists() throws {
        let train = try HarmonizationDataset(root: DatasetFixtures.ihd, split: .train)
        #expect(train.samples.map(\.name) == ["a1_1_1.jpg", "a1_1_2.jpg", "b7_1_1.jpg"])
        #expect(train.subsets == ["HAlpha", "HBeta"])
        #expect(train.samples.allSatisfy { $0.listFile.hasSuffix("IHD_train.txt") })
        // extensions come from the disk, not from the list or a fixed rule
        let b7 = train.samples[2]
        #expect(b7.composite.lastPathComponent == "b7_1_1.png")
        #expect(b7.mask.lastPathComponent == "b7_1.jpg")
        #expect(b7.real.lastPathComponent == "b7.jpeg")
        let test = try HarmonizationDataset(root: DatasetFixtures.ihd, split: .test)
        #expect(test.samples.map(\.name) == ["a2_1_1.png", "b8_1_3.jpg"])
        #expect(test.samples.map(\.line) == [1, 2])
        #expect(
            test.samples[0].mask.lastPathComponent == "a2_1.png" && test.samples[0].real.lastPathComponent == "a2.png")
    }

    @Test func singleSubsetFolderWithBareNames() throws {
        let train = try HarmonizationDataset(root: DatasetFixtures.ihd.appendingPathComponent("HAlpha"), split: .train)
        #expect(train.samples.map(\.name) == ["a1_1_1.jpg", "a1_1_2.jpg"])
        #expect(train.samples.allSatisfy { $0.subset == "HAlpha" && $0.listFile.hasSuffix("HAlpha_train.txt") })
        #expect(train.samples[1].real == train.samples[0].real)
        #expect(train.samples[1].real.lastPathComponent == "a1.jpg")
    }

    @Test func rootWithoutCombinedListsReadsEverySubsetList() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let copy = folder.appendingPathComponent("ihd")
        try FileManager.default.copyItem(at: DatasetFixtures.ihd, to: copy)
        for split in ["train", "test"] {
            try FileManager.default.removeItem(at: copy.appendingPathComponent("IHD_\(split).txt"))
        }
        let train = try HarmonizationDataset(root: copy, split: .train)
        #expect(
            train.samples.map { "\($0.subset)/\($0.name)" } == [
                "HAlpha/a1_1_1.jpg", "HAlpha/a1_1_2.jpg", "HBeta/b7_1_1.jpg",
            ])
    }

    @Test func missingMaskNamesListLineAndPath() throws {
        do {
            _ = try HarmonizationDataset(root: DatasetFixtures.missingMask, split: .train)
            Issue.record("a dataset with a missing mask was accepted")
        } catch let error as DatasetError {
            #expect(error.message.contains("missing_mask_train.txt:2"), "\(error)")
            #expect(error.message.contains("mask"), "\(error)")
            #expect(error.message.contains("masks/m1_2"), "\(error)")
        }
        // the test list has no such line and loads
        #expect(try HarmonizationDataset(root: DatasetFixtures.missingMask, split: .test).count == 1)
    }

    @Test func malformedNamesAndMissingFoldersAreErrors() throws {
        let folder = try DatasetFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(throws: DatasetError.self) { try HarmonizationDataset(root: folder, split: .train) }
        #expect(throws: DatasetError.self) {
            try HarmonizationDataset(root: folder.appendingPathComponent("none"), split: .train)
        }
        try FileManager.default.createDirectory(
            at: folder.appendingPathComponent("composite_images"), withIntermediateDirectories: true)
        try Data("nounderscore.jpg\n".utf8).write(to: folder.appendingPathComponent("X_train.txt"))
        do {
            _ = try HarmonizationDataset(root: folder, split: .train)
            Issue.record("a malformed name was accepted")
        } catch let error as DatasetError {
            #expect(error.message.contains("X_train.txt:1"), "\(error)")
        }
    }

    @Test func loadsSamplesAsFloatImages() throws {
        let dataset = try HarmonizationDataset(root: DatasetFixtures.ihd, split: .test)
        let sample = try dataset.load(0)  // all PNG: exact values
        #expect(sample.width == 8 && sample.height == 6)
        #expect(sample.composite.channels == 3 && sample.mask.channels == 1 && sample.target.channels == 3)
        // mask: rows 1..<4, columns 2..<6 on; composite = inverted real there, equal elsewhere
        for y in 0..<6 {
            for x in 0..<8 {
                let inside = (1..<4).contains(y) && (2..<6).contains(x)
                #expect(sample.mask[0, y, x] == (inside ? 1 : 0))
                let expected = inside ? 1 - sample.target[1, y, x] : sample.target[1, y, x]
                #expect(abs(sample.composite[1, y, x] - expected) < 1e-6)
            }
        }
        let batch = Batch(samples: [sample, sample])
        #expect(
            batch.composites.shape == [2, 3, 6, 8] && batch.masks.shape == [2, 1, 6, 8]
                && batch.targets.shape == [2, 3, 6, 8])
        #expect(batch.inputs.shape == [2, 4, 6, 8])
        #expect(Array(batch.inputs.data[(3 * 48)..<(4 * 48)]) == sample.mask.values)
    }
}
