import Foundation
// What a training run trains and validates on, as lists that ranks can compare and digests that a
// checkpoint keeps: the configuration, the training list (or the photo set of fresh composites) with
// file sizes, and the validation list. The ranks of a data-parallel run compare theirs with rank
// 0's before any training work; a resume compares the data with the checkpoint's (docs/scaling.md).
import GKNetDataParallel
import GKNetDatasets
import GKNetSynthesis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The fingerprint of a run's data; `entries` are kept for the comparison between ranks and left
/// out of checkpoints (which keep the counts and digests only).
public struct DataFingerprint: Codable, Equatable, Sendable {
    /// One compared list: its lines (in order), their number and a digest of them.
    public struct Part: Codable, Equatable, Sendable {
        public var count: Int
        /// 64-bit FNV-1a of the lines (each followed by a newline), 16 hex digits.
        public var digest: String
        /// The lines; empty when read from a checkpoint.
        public var entries: [String]

        public init(entries: [String]) {
            self.entries = entries
            count = entries.count
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for entry in entries {
                for byte in entry.utf8 + [10] {
                    hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
                }
            }
            digest = String(hash, radix: 16).leftPadded(to: 16)
        }

        /// The part without its lines (what a checkpoint stores).
        var summary: Part {
            var copy = self
            copy.entries = []
            return copy
        }
    }

    /// What the training samples are: a list of composites, or photos for fresh composites.
    public enum TrainingKind: String, Codable, Sendable {
        case composites, photos

        /// "training list" / "photo set".
        var listName: String { self == .composites ? "training list" : "photo set" }
    }

    /// The resolved configuration as `key: JSON value` lines (sorted keys).
    public var configuration: Part
    public var trainingKind: TrainingKind
    /// Composites: `<composite path under the dataset root> <composite>/<mask>/<real bytes>`; photos:
    /// `<relative path> <photo>/<mask bytes>`.
    public var training: Part
    /// Lines as for composites; nil: the run does not validate.
    public var validation: Part?

    enum CodingKeys: String, CodingKey {
        case configuration, trainingKind = "training_kind", training, validation
    }

    public init(configuration: Part, trainingKind: TrainingKind, training: Part, validation: Part?) {
        self.configuration = configuration
        self.trainingKind = trainingKind
        self.training = training
        self.validation = validation
    }

    /// The fingerprint of a configuration and what it trains and validates on.
    public init(
        configuration: TrainingConfiguration, training: any SampleSource, validation: HarmonizationDataset?
    ) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try JSONSerialization.jsonObject(with: try encoder.encode(configuration)) as? [String: Any] ?? [:]
        let lines = try object.keys.sorted().map { key in
            let value = try JSONSerialization.data(
                withJSONObject: object[key] as Any, options: [.sortedKeys, .fragmentsAllowed])
            return "\(key): \(String(decoding: value, as: UTF8.self))"
        }
        self.configuration = Part(entries: lines)
        if let photos = training as? PhotoCollection {
            trainingKind = .photos
            self.training = Part(
                entries: photos.sources.map { "\($0.relativePath) \(fileSize($0.photo))/\(fileSize($0.mask))" })
        } else if let dataset = training as? HarmonizationDataset {
            trainingKind = .composites
            self.training = Part(entries: Self.entries(dataset))
        } else {
            trainingKind = .composites
            self.training = Part(entries: (0..<training.count).map { "\(training.sourceDescription) #\($0)" })
        }
        self.validation = validation.map { Part(entries: Self.entries($0)) }
    }

    /// `<composite path under the root> <composite>/<mask>/<real bytes>`: the root's own path is left
    /// out (it may differ between machines, or after the data moved).
    static func entries(_ dataset: HarmonizationDataset) -> [String] {
        let root = dataset.root.path.hasSuffix("/") ? dataset.root.path : dataset.root.path + "/"
        return dataset.samples.map {
            let path = $0.composite.standardizedFileURL.path
            let name = path.hasPrefix(root) ? String(path.dropFirst(root.count)) : "\($0.subset)/\($0.name)"
            return "\(name) \(fileSize($0.composite))/\(fileSize($0.mask))/\(fileSize($0.real))"
        }
    }

    /// The fingerprint without the lines, as a checkpoint stores it.
    public var summary: DataFingerprint {
        DataFingerprint(
            configuration: configuration.summary, trainingKind: trainingKind, training: training.summary,
            validation: validation?.summary)
    }

    /// How this rank's data differs from rank 0's (`reference`), one clause per differing part
    /// ("rank 1's training list has 5 composites, rank 0's 6 (...)"); empty when they agree.
    public func differences(fromRankZero reference: DataFingerprint, rank: Int) -> [String] {
        var found: [String] = []
        if configuration.digest != reference.configuration.digest {
            let mine = Dictionary(configuration.entries.map(Self.keyAndValue), uniquingKeysWith: { a, _ in a })
            let theirs = Dictionary(
                reference.configuration.entries.map(Self.keyAndValue), uniquingKeysWith: { a, _ in a })
            let keys = Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }.sorted()
            let shown = keys.prefix(4).map { "\($0) \(mine[$0] ?? "(none)") vs \(theirs[$0] ?? "(none)")" }
            found.append(
                "rank \(rank)'s configuration differs from rank 0's: \(shown.joined(separator: ", "))"
                    + (keys.count > 4 ? " and \(keys.count - 4) more keys" : ""))
        }
        if trainingKind != reference.trainingKind {
            found.append(
                "rank \(rank) trains on \(Self.describe(trainingKind, training.count)), rank 0 on "
                    + "\(Self.describe(reference.trainingKind, reference.training.count))")
        } else if training.digest != reference.training.digest {
            found.append(
                Self.listDifference(
                    name: trainingKind.listName, unit: trainingKind.rawValue, mine: training,
                    theirs: reference.training, rank: rank))
        }
        switch (validation, reference.validation) {
        case (nil, nil): break
        case (nil, let theirs?):
            found.append("rank \(rank) has no validation list, rank 0's has \(theirs.count) images")
        case (let mine?, nil):
            found.append("rank \(rank)'s validation list has \(mine.count) images, rank 0 has none")
        case (let mine?, let theirs?):
            if mine.digest != theirs.digest {
                found.append(
                    Self.listDifference(name: "validation list", unit: "images", mine: mine, theirs: theirs, rank: rank)
                )
            }
        }
        return found
    }

    /// How the data of a resumed run differs from the checkpoint's (`saved`, digests only); empty
    /// when they agree. The configuration is checked separately (config.json).
    public func differences(fromCheckpoint saved: DataFingerprint) -> [String] {
        var found: [String] = []
        if trainingKind != saved.trainingKind || training.digest != saved.training.digest {
            let (name, unit) = (trainingKind.listName, trainingKind.rawValue)
            if trainingKind != saved.trainingKind {
                found.append(
                    "the run now trains on \(Self.describe(trainingKind, training.count)), the checkpoint on "
                        + Self.describe(saved.trainingKind, saved.training.count))
            } else if training.count != saved.training.count {
                found.append("the \(name) now has \(training.count) \(unit), the checkpoint's \(saved.training.count)")
            } else {
                found.append(
                    "the \(name) has the same \(training.count) \(unit) but other files (names or sizes differ)")
            }
        }
        switch (validation, saved.validation) {
        case (nil, nil): break
        case (nil, let then?):
            found.append("the run now has no validation list, the checkpoint's had \(then.count) images")
        case (let now?, nil):
            found.append("the run now has a validation list of \(now.count) images, the checkpoint had none")
        case (let now?, let then?):
            if now.digest != then.digest {
                found.append(
                    now.count == then.count
                        ? "the validation list has the same \(now.count) images but other files (names or sizes differ)"
                        : "the validation list now has \(now.count) images, the checkpoint's \(then.count)")
            }
        }
        return found
    }

    static func describe(_ kind: TrainingKind, _ count: Int) -> String {
        kind == .composites ? "a list of \(count) composites" : "fresh composites of \(count) photos"
    }

    static func keyAndValue(_ line: String) -> (String, String) {
        guard let colon = line.range(of: ": ") else { return (line, "") }
        return (String(line[..<colon.lowerBound]), String(line[colon.upperBound...]))
    }

    /// "rank 1's training list has 5 composites, rank 0's 6: rank 0's has composite_images/a_1_1.jpg
    /// (composite/mask/real 120/40/130 bytes), rank 1's does not",
    /// or for lists of one length the first line that differs.
    static func listDifference(name: String, unit: String, mine: Part, theirs: Part, rank: Int) -> String {
        if mine.count != theirs.count {
            let (longer, shorter) = mine.count > theirs.count ? (mine, theirs) : (theirs, mine)
            let present = Set(shorter.entries)
            let (owner, other) =
                mine.count > theirs.count ? ("rank \(rank)'s", "rank 0's") : ("rank 0's", "rank \(rank)'s")
            let example = longer.entries.first { !present.contains($0) }.map {
                ": \(owner) has \(Self.describeEntry($0)), \(other) does not"
            }
            return "rank \(rank)'s \(name) has \(mine.count) \(unit), rank 0's \(theirs.count)\(example ?? "")"
        }
        guard let index = mine.entries.indices.first(where: { mine.entries[$0] != theirs.entries[$0] }) else {
            return "rank \(rank)'s \(name) differs from rank 0's (same \(mine.count) \(unit))"
        }
        return "rank \(rank)'s \(name) differs from rank 0's at line \(index + 1) of \(mine.count): "
            + "\(describeEntry(mine.entries[index])) vs \(describeEntry(theirs.entries[index]))"
    }

    /// "composite_images/a_1_1.jpg 120/40/130" as "composite_images/a_1_1.jpg (composite/mask/real
    /// 120/40/130 bytes)".
    static func describeEntry(_ entry: String) -> String {
        guard let space = entry.lastIndex(of: " ") else { return entry }
        let sizes = entry[entry.index(after: space)...]
        let files = sizes.filter { $0 == "/" }.count == 2 ? "composite/mask/real" : "photo/mask"
        return "\(entry[..<space]) (\(files) \(sizes) bytes)"
    }
}

/// The size of a file in bytes, or -1 when it cannot be read (a difference like any other).
func fileSize(_ url: URL) -> Int64 {
    var status = stat()
    return stat(url.path, &status) == 0 ? Int64(status.st_size) : -1
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}

/// The ranks of a data-parallel run would train on different data (the message names what
/// differs); every rank throws it, rank 0 reports it.
public struct RankDisagreement: Error, CustomStringConvertible {
    public var description: String
}

extension DataFingerprint {
    /// Compares every rank's fingerprint with rank 0's: rank 0 sends its own, each rank lists its
    /// differences, rank 0 gathers them and sends the verdict back. Every rank must call it; when
    /// any rank differs, every rank throws the same `RankDisagreement`.
    public func checkAgreement(_ communicator: Communicator) throws {
        guard communicator.isDistributed else { return }
        let encoder = JSONEncoder()
        let referenceData = communicator.broadcast(communicator.isRoot ? try encoder.encode(self) : Data())
        let reference = try JSONDecoder().decode(DataFingerprint.self, from: referenceData)
        let mine = communicator.isRoot ? [] : differences(fromRankZero: reference, rank: communicator.rank)
        let gathered = communicator.gather(Data(mine.joined(separator: "; ").utf8))
        var verdict = Data()
        if communicator.isRoot {
            let clauses = gathered.map { String(decoding: $0, as: UTF8.self) }.filter { !$0.isEmpty }
            if !clauses.isEmpty {
                verdict = Data(
                    ("the ranks would train on different data: \(clauses.joined(separator: "; ")); every rank must "
                        + "see the same configuration, files and validation list (docs/scaling.md)").utf8)
            }
        }
        verdict = communicator.broadcast(verdict)
        if !verdict.isEmpty { throw RankDisagreement(description: String(decoding: verdict, as: UTF8.self)) }
    }
}
