import Foundation
// Synthesis inputs: finding photo/mask pairs, naming their outputs, and the hold-out list that
// puts whole source folders in the test split.
import GKNetDatasets

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A photo and its mask found on disk.
public struct PhotoSource: Sendable, Equatable, Codable {
    /// Path under the photos folder without extension ("animals/cat"); the mask has the same
    /// relative path under the masks folder, with any image extension.
    public var relativePath: String
    public var photo: URL
    public var mask: URL
}

/// Photos to hold out for the test split, by name or source folder: one pattern per line, `#`
/// starts a comment. A photo's source path is its relative path without extension, where a flat
/// file name "<folder>__<name>" (the `make data` naming) is read as "<folder with . as />/<name>":
/// "categorization.fishes__fish1" is "categorization/fishes/fish1". A plain line matches a photo
/// whose source path equals it or lies under it as a folder at any depth ("fishes" and
/// "categorization/fishes" both match that photo), or whose base name equals it; a line with `*`,
/// `?` or `[` is a shell glob matched against the relative path, the source path and the base name.
public struct HoldoutList: Sendable, Codable, Equatable {
    public var patterns: [String]

    public init(patterns: [String]) {
        self.patterns = patterns.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    public init(contentsOf url: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw DatasetError("\(url.path): cannot read the hold-out list")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map { line in
            String(line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        }
        self.init(patterns: lines)
    }

    /// The source path of a photo (see the type's description).
    public static func sourcePath(_ relativePath: String) -> String {
        var components = relativePath.split(separator: "/").map(String.init)
        guard let base = components.popLast() else { return relativePath }
        if let separator = base.range(of: "__"), separator.lowerBound != base.startIndex {
            let folder = base[..<separator.lowerBound].replacingOccurrences(of: ".", with: "/")
            components += folder.split(separator: "/").map(String.init)
            components.append(String(base[separator.upperBound...]))
        } else {
            components.append(base)
        }
        return components.joined(separator: "/")
    }

    public func matches(_ relativePath: String) -> Bool {
        let base = relativePath.split(separator: "/").last.map(String.init) ?? relativePath
        let source = Self.sourcePath(relativePath)
        return patterns.contains { pattern in
            if pattern.contains(where: { "*?[".contains($0) }) {
                return [relativePath, source, base].contains(where: { (text: String) in fnmatch(pattern, text, 0) == 0 }
                )
            }
            return ("/" + source + "/").contains("/" + pattern + "/")
                || ("/" + relativePath + "/").contains("/" + pattern + "/")
                || base == pattern
        }
    }
}

extension DatasetSynthesis {
    static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// Every image under `photos` (recursively) that has a mask at the same relative path under `masks`.
    /// Photos without a mask are returned in `unmatched`.
    public static func discover(photos: URL, masks: URL) throws -> (sources: [PhotoSource], unmatched: [String]) {
        func images(under root: URL) throws -> [String: URL] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw DatasetError("\(root.path): folder does not exist")
            }
            var found: [String: URL] = [:]
            let rootPath = root.standardizedFileURL.resolvingSymlinksInPath().path
            guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
                return found
            }
            for case let url as URL in walker where imageExtensions.contains(url.pathExtension.lowercased()) {
                let full = url.standardizedFileURL.resolvingSymlinksInPath().deletingPathExtension().path
                guard full.hasPrefix(rootPath + "/") else { continue }
                let relative = String(full.dropFirst(rootPath.count + 1))
                if let existing = found[relative], existing.pathExtension.lowercased() == "png" { continue }
                found[relative] = url
            }
            return found
        }
        let photoFiles = try images(under: photos), maskFiles = try images(under: masks)
        var sources: [PhotoSource] = [], unmatched: [String] = []
        for relative in photoFiles.keys.sorted() {
            if let mask = maskFiles[relative] {
                sources.append(PhotoSource(relativePath: relative, photo: photoFiles[relative]!, mask: mask))
            } else {
                unmatched.append(relative)
            }
        }
        return (sources, unmatched)
    }

    /// A file-name-safe id: letters, digits and "-" only (iHarmony4 parsers split names on "_",
    /// and some tools split on ".").
    static func identifier(for relativePath: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        let mapped = String(relativePath.map { allowed.contains($0) ? $0 : "-" })
        return mapped.isEmpty ? "photo" : mapped
    }

    /// Unique ids for the photos, in order.
    static func identifiers(for sources: [PhotoSource]) -> [String] {
        var used = Set<String>()
        return sources.map { source in
            let base = identifier(for: source.relativePath)
            var candidate = base, counter = 2
            while !used.insert(candidate.lowercased()).inserted {
                candidate = "\(base)-\(counter)"
                counter += 1
            }
            return candidate
        }
    }
}
