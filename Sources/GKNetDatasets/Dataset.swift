// iHarmony4 datasets: a root with subset folders (or one subset folder), split lists, and the
// composite -> mask -> real naming rule (docs/data.md, "Datasets").
import Foundation
import GKNetImageCodec

/// Which list of a dataset.
public enum DatasetSplit: String, Sendable, Codable, CaseIterable {
    case train, test
}

/// A dataset problem: a missing list or file, a malformed list line. The message names the list
/// file and line and the path involved.
public struct DatasetError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where one composite/mask/real triple lives, and which list line named it.
public struct SampleReference: Sendable, Hashable, Codable {
    /// The subset folder name (e.g. "HAdobe5k").
    public let subset: String
    /// The composite's file name as listed (e.g. "a0001_1_1.jpg").
    public let name: String
    public let composite: URL
    public let mask: URL
    public let real: URL
    /// The list file and 1-based line that named this sample.
    public let listFile: String
    public let line: Int

    public init(subset: String, name: String, composite: URL, mask: URL, real: URL, listFile: String, line: Int) {
        self.subset = subset
        self.name = name
        self.composite = composite
        self.mask = mask
        self.real = real
        self.listFile = listFile
        self.line = line
    }

    /// "list:line" for messages.
    public var origin: String { "\(listFile):\(line)" }
}

/// An iHarmony4-layout dataset split, resolved and checked at creation (every file exists).
///
/// Layout (docs/data.md, "Datasets"): `<root>/IHD_<split>.txt` lists root-relative paths
/// ("HAdobe5k/composite_images/a0001_1_1.jpg"); otherwise each subset folder (one with
/// `composite_images/`) has `<Subset>_<split>.txt` listing bare composite names; `root` may
/// also be one subset folder. Composite `<id>_<m>_<k>.<ext>` has mask `masks/<id>_<m>.<ext>` and
/// real `real_images/<id>.<ext>`; each extension (.jpg, .jpeg, .png, any case) is found on disk.
public struct HarmonizationDataset: Sendable {
    public let root: URL
    public let split: DatasetSplit
    public let samples: [SampleReference]

    /// The subset names in order of first appearance.
    public var subsets: [String] {
        var seen = Set<String>()
        return samples.compactMap { seen.insert($0.subset).inserted ? $0.subset : nil }
    }

    public var count: Int { samples.count }

    /// Resolves the split's lists under `root` (a dataset root or one subset folder).
    public init(root: URL, split: DatasetSplit) throws {
        let root = root.standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError("\(root.path): dataset folder does not exist")
        }
        self.root = root
        self.split = split
        var resolver = FileResolver()
        let combined = root.appendingPathComponent("IHD_\(split.rawValue).txt")
        if FileManager.default.fileExists(atPath: combined.path) {
            samples = try Self.readCombinedList(combined, root: root, resolver: &resolver)
        } else if Self.isSubsetFolder(root) {
            samples = try Self.readSubsetList(
                try Self.subsetList(in: root, split: split), folder: root, resolver: &resolver)
        } else {
            let subsetFolders = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
                .filter(Self.isSubsetFolder).sorted { $0.lastPathComponent < $1.lastPathComponent }
            guard !subsetFolders.isEmpty else {
                throw DatasetError(
                    "\(root.path): not an iHarmony4 dataset: no IHD_\(split.rawValue).txt, no composite_images/ "
                        + "folder, "
                        + "and no subset folders containing composite_images/")
            }
            var all: [SampleReference] = []
            for folder in subsetFolders {
                all += try Self.readSubsetList(
                    try Self.subsetList(in: folder, split: split), folder: folder, resolver: &resolver)
            }
            samples = all
        }
    }

    static func isSubsetFolder(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(
            atPath: url.appendingPathComponent("composite_images").path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    /// `<Folder>_<split>.txt`, or else the only `*_<split>.txt` in the folder.
    static func subsetList(in folder: URL, split: DatasetSplit) throws -> URL {
        let named = folder.appendingPathComponent("\(folder.lastPathComponent)_\(split.rawValue).txt")
        if FileManager.default.fileExists(atPath: named.path) { return named }
        let suffix = "_\(split.rawValue).txt"
        let candidates =
            (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.filter { $0.hasSuffix(suffix) }
            .sorted() ?? []
        guard candidates.count == 1 else {
            throw DatasetError(
                candidates.isEmpty
                    ? "\(folder.path): no split list \(named.lastPathComponent) (or any *\(suffix))"
                    : "\(folder.path): several split lists (\(candidates.joined(separator: ", "))) and none named "
                        + "\(named.lastPathComponent)"
            )
        }
        return folder.appendingPathComponent(candidates[0])
    }

    /// The non-blank lines of a list with their 1-based line numbers (CRLF tolerated).
    static func lines(of list: URL) throws -> [(number: Int, text: String)] {
        guard let data = FileManager.default.contents(atPath: list.path) else {
            throw DatasetError("\(list.path): cannot read split list")
        }
        let text = String(decoding: data, as: UTF8.self)
        return text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated().compactMap {
            index, line in
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : (index + 1, trimmed)
        }
    }

    static func readSubsetList(_ list: URL, folder: URL, resolver: inout FileResolver) throws -> [SampleReference] {
        try lines(of: list).map { line in
            guard !line.text.contains("/") else {
                throw DatasetError(
                    "\(list.path):\(line.number): expected a bare composite file name, found a path \"\(line.text)\"")
            }
            return try resolver.resolve(name: line.text, folder: folder, list: list.path, line: line.number)
        }
    }

    static func readCombinedList(_ list: URL, root: URL, resolver: inout FileResolver) throws -> [SampleReference] {
        try lines(of: list).map { line in
            let parts = line.text.split(separator: "/").map(String.init)
            guard parts.count >= 3, parts[parts.count - 2] == "composite_images" else {
                throw DatasetError(
                    "\(list.path):\(line.number): expected \"<Subset>/composite_images/<name>\", found \"\(line.text)\""
                )
            }
            let folder = parts.dropLast(2).reduce(root) { $0.appendingPathComponent($1) }
            return try resolver.resolve(
                name: parts[parts.count - 1], folder: folder, list: list.path, line: line.number)
        }
    }

    /// Decodes sample `index` at full resolution: RGB composite and real in 0...1, the mask from
    /// its first channel / 255 (the iDIH reading), kept soft.
    public func load(_ index: Int, limits: DecodeLimits = DecodeLimits()) throws -> Sample {
        try Sample.load(samples[index], limits: limits)
    }
}

/// Finds files by stem in a subset's folders, listing each folder once.
struct FileResolver {
    static let extensions = ["png", "jpg", "jpeg"]
    /// folder path -> stem -> file names with an image extension
    private var listings: [String: [String: [String]]] = [:]

    mutating func files(in folder: URL) -> [String: [String]] {
        if let cached = listings[folder.path] { return cached }
        var byStem: [String: [String]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [] {
            let url = URL(fileURLWithPath: name)
            guard Self.extensions.contains(url.pathExtension.lowercased()) else { continue }
            byStem[url.deletingPathExtension().lastPathComponent, default: []].append(name)
        }
        listings[folder.path] = byStem
        return byStem
    }

    /// The file for `stem` in `folder`, preferring the extensions in `preference` order.
    mutating func find(stem: String, in folder: URL, preference: [String]) -> URL? {
        guard let names = files(in: folder)[stem] else { return nil }
        let ranked = names.sorted { a, b in
            let ra = preference.firstIndex(of: URL(fileURLWithPath: a).pathExtension.lowercased()) ?? preference.count
            let rb = preference.firstIndex(of: URL(fileURLWithPath: b).pathExtension.lowercased()) ?? preference.count
            return ra != rb ? ra < rb : a < b
        }
        return folder.appendingPathComponent(ranked[0])
    }

    mutating func resolve(name: String, folder: URL, list: String, line: Int) throws -> SampleReference {
        let listed = URL(fileURLWithPath: name)
        let stem =
            FileResolver.extensions.contains(listed.pathExtension.lowercased())
            ? listed.deletingPathExtension().lastPathComponent : name
        let parts = stem.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts.allSatisfy({ !$0.isEmpty }) else {
            throw DatasetError("\(list):\(line): composite name \"\(name)\" is not <id>_<mask>_<k>")
        }
        let maskStem = parts.dropLast().joined(separator: "_")
        let realStem = parts.dropLast(2).joined(separator: "_")
        let listedExtension = listed.pathExtension.lowercased()
        let compositeFolder = folder.appendingPathComponent("composite_images")
        let maskFolder = folder.appendingPathComponent("masks")
        let realFolder = folder.appendingPathComponent("real_images")
        func missing(_ what: String, _ folder: URL, _ stem: String) -> DatasetError {
            DatasetError(
                "\(list):\(line): \(what) for \"\(name)\" not found: "
                    + "\(folder.appendingPathComponent(stem).path).{png,jpg,jpeg}"
            )
        }
        guard
            let composite = find(stem: stem, in: compositeFolder, preference: [listedExtension, "jpg", "jpeg", "png"])
        else {
            throw missing("composite", compositeFolder, stem)
        }
        guard let mask = find(stem: maskStem, in: maskFolder, preference: ["png", "jpg", "jpeg"]) else {
            throw missing("mask", maskFolder, maskStem)
        }
        guard let real = find(stem: realStem, in: realFolder, preference: ["jpg", "jpeg", "png"]) else {
            throw missing("real image", realFolder, realStem)
        }
        return SampleReference(
            subset: folder.lastPathComponent, name: listed.lastPathComponent, composite: composite, mask: mask,
            real: real,
            listFile: list, line: line)
    }
}
