// The fingerprint of a run's data (DataFingerprint): what the ranks of a data-parallel run compare
// and what a checkpoint keeps. Each kind of difference gets a message that names it; a resume on
// other data is an error unless allowed (DataParallelTests checks the ranks under a real mpirun).
import Foundation
import GKNetDatasets
import GKNetTensorCore
import GKNetTestSupport
import Testing

@testable import GKNetTraining

private let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples/HGCompris")

/// A copy of the bundled HGCompris subset, changed by `edit`.
private func copyOfSamples(_ edit: (URL) throws -> Void = { _ in }) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-fingerprint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let copy = folder.appendingPathComponent("HGCompris")
    try FileManager.default.copyItem(at: samples, to: copy)
    try edit(copy)
    return copy
}

private func fingerprint(_ root: URL, configuration: TrainingConfiguration = TrainingConfiguration()) throws
    -> DataFingerprint
{
    let validation = try? HarmonizationDataset(root: root, split: .test)
    return try DataFingerprint(
        configuration: configuration, training: try HarmonizationDataset(root: root, split: .train),
        validation: validation)
}

private func dropLastLine(of list: URL) throws {
    let lines = try String(contentsOf: list, encoding: .utf8).split(separator: "\n")
    try Data((lines.dropLast().joined(separator: "\n") + "\n").utf8).write(to: list)
}

@Suite struct DataFingerprintTests {
    @Test func sameDataAtAnotherPathAgrees() throws {
        let copy = try copyOfSamples()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let (a, b) = (try fingerprint(samples), try fingerprint(copy))
        #expect(a == b)
        #expect(b.differences(fromRankZero: a, rank: 1).isEmpty)
        #expect(b.differences(fromCheckpoint: a.summary).isEmpty)
        #expect(a.training.count == 6 && a.validation?.count == 2)
        #expect(a.training.entries.first == "composite_images/bucket_1_1.jpg 23171/1012/24628")
    }

    @Test func eachDifferenceIsNamed() throws {
        let reference = try fingerprint(samples)
        let shorter = try copyOfSamples { try dropLastLine(of: $0.appendingPathComponent("HGCompris_train.txt")) }
        let resized = try copyOfSamples { folder in
            let mask = folder.appendingPathComponent("masks/moose_1.png")
            try (try Data(contentsOf: mask) + Data([0])).write(to: mask)
        }
        let unvalidated = try copyOfSamples {
            try FileManager.default.removeItem(at: $0.appendingPathComponent("HGCompris_test.txt"))
        }
        defer {
            for copy in [shorter, resized, unvalidated] {
                try? FileManager.default.removeItem(at: copy.deletingLastPathComponent())
            }
        }
        func message(_ other: DataFingerprint) -> String {
            other.differences(fromRankZero: reference, rank: 1).joined(separator: "; ")
        }
        let missing = message(try fingerprint(shorter))
        #expect(
            missing == "rank 1's training list has 5 composites, rank 0's 6: rank 0's has "
                + "composite_images/panda_1_2.jpg (composite/mask/real 27025/1047/27200 bytes), rank 1's does not")
        // Rank 0 short of a composite: the same, seen from the other side.
        let extra = try fingerprint(samples).differences(fromRankZero: try fingerprint(shorter), rank: 1)
        #expect(extra.first?.hasPrefix("rank 1's training list has 6 composites, rank 0's 5: rank 1's has ") == true)
        // Two composites share the moose mask: the first of them is named.
        let sized = message(try fingerprint(resized))
        #expect(
            sized.hasPrefix(
                "rank 1's training list differs from rank 0's at line 3 of 6: composite_images/moose_1_1.jpg"))
        #expect(
            sized.hasSuffix(
                "29222/1164/29820 bytes) vs composite_images/moose_1_1.jpg (composite/mask/real 29222/1163/29820 bytes)"
            ), "\(sized)")
        #expect(message(try fingerprint(unvalidated)) == "rank 1 has no validation list, rank 0's has 2 images")
        #expect(
            reference.differences(fromRankZero: try fingerprint(unvalidated), rank: 1)
                == ["rank 1's validation list has 2 images, rank 0 has none"])
        var configuration = TrainingConfiguration()
        configuration.batchSize = 4
        configuration.seed = 9
        #expect(
            message(try fingerprint(samples, configuration: configuration))
                == "rank 1's configuration differs from rank 0's: batch_size 4 vs 16, seed 9 vs 0")

        // Against a checkpoint (digests only).
        #expect(
            try fingerprint(shorter).differences(fromCheckpoint: reference.summary)
                == ["the training list now has 5 composites, the checkpoint's 6"])
        #expect(
            try fingerprint(resized).differences(fromCheckpoint: reference.summary)
                == ["the training list has the same 6 composites but other files (names or sizes differ)"])
        #expect(
            try fingerprint(unvalidated).differences(fromCheckpoint: reference.summary)
                == ["the run now has no validation list, the checkpoint's had 2 images"])
        // The summary round-trips through JSON (checkpoint metadata).
        let summary = try JSONDecoder().decode(
            DataFingerprint.self, from: try JSONEncoder().encode(reference.summary))
        #expect(summary == reference.summary && summary.training.entries.isEmpty)
    }

    @Test func resumeOnOtherDataIsAnErrorUnlessAllowed() throws {
        let data = try copyOfSamples()
        let run = data.deletingLastPathComponent().appendingPathComponent("run")
        defer { try? FileManager.default.removeItem(at: data.deletingLastPathComponent()) }
        let configuration = try TrainingConfiguration.decode(
            Data(
                #"""
                {"preset": "tiny", "input_size": 32, "batch_size": 2, "steps": 4, "validation_interval": 0,
                 "checkpoint_interval": 2, "log_interval": 100, "warmup_steps": 2, "seed": 3, "threads": 1}
                """#.utf8))
        var steps = 0
        let first = try Trainer(configuration: configuration, dataset: data, runDirectory: run, resume: false)
        _ = try first.run(shouldStop: {
            steps += 1
            return steps >= 2
        })
        let checkpoint = try SafeTensorsFile(contentsOf: run.appendingPathComponent(RunDirectory.lastCheckpoint))
        #expect(checkpoint.metadata[Trainer.dataKey]?.contains(#""count":6"#) == true)

        try dropLastLine(of: data.appendingPathComponent("HGCompris_train.txt"))
        do {
            _ = try Trainer(configuration: nil, dataset: data, runDirectory: run, resume: true)
            Issue.record("a resume on a shorter training list was accepted")
        } catch let error as TrainingError {
            #expect(error.description.contains("was trained on other data: the training list now has 5 composites"))
            #expect(error.description.contains("--allow-other-data"))
        }
        // On purpose: the run goes on (and says so), on the new list.
        let resumed = try Trainer(
            configuration: nil, dataset: data, runDirectory: run, resume: true, allowOtherData: true)
        #expect(resumed.step == 2)
        var lines: [String] = []
        let result = try resumed.run(report: { lines.append($0) })
        #expect(result.lastStep == 4)
        #expect(
            lines.first?.hasPrefix("resuming on other data (--allow-other-data): the training list now has 5") == true)
        let saved = try SafeTensorsFile(contentsOf: run.appendingPathComponent(RunDirectory.lastCheckpoint))
        #expect(saved.metadata[Trainer.dataKey]?.contains(#""count":5"#) == true)
    }
}
