// The executables the CLI tests run: only the products of the build that made this test bundle
// (the same .build/<triple>/<configuration> folder), never another build's, and only when none of
// the object files linked into them is newer than the executable (a tree rebuilt without
// relinking the executable, e.g. `swift build --target CLITests`, would test old code).
import Foundation
import GKNetTestSupport
import Testing

/// A product of the build under test, or why it cannot be used.
struct BuiltExecutable: Sendable {
    let name: String
    /// The executable next to the test bundle; nil when it was not built.
    let url: URL?
    /// Set when the executable exists but is older than code linked into it.
    let staleness: String?

    /// Whether the executable exists (stale or not): tests run, and fail on a stale one.
    var exists: Bool { url != nil }

    /// The executable; throws (a test failure) when it is missing or stale.
    func require() throws -> URL {
        guard let url else {
            throw ExecutableProblem(
                "\(name) is not built next to the test bundle (\(Self.buildFolder?.path ?? "unknown folder")): run "
                    + "`swift build --build-tests` (make test does)")
        }
        if let staleness { throw ExecutableProblem(staleness) }
        return url
    }

    /// The folder that holds this test bundle and the products of the same build.
    static let buildFolder: URL? = {
        var candidates: [URL] = []
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL.resolvingSymlinksInPath().deletingLastPathComponent())
        return candidates.first { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains {
                $0.hasSuffix("PackageTests.xctest")
            }
        } ?? candidates.first
    }()

    init(_ name: String) {
        self.name = name
        guard let folder = Self.buildFolder else {
            (url, staleness) = (nil, nil)
            return
        }
        let candidate = folder.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            (url, staleness) = (nil, nil)
            return
        }
        url = candidate
        staleness = Self.staleness(
            of: candidate, linkList: folder.appendingPathComponent("\(name).product/Objects.LinkFileList"))
    }

    /// Names the newest object file linked into `executable` that is newer than it, if any. The
    /// compiler rewrites an object file only when its code changed, so a newer one means the
    /// executable was not relinked after a change. Without SwiftPM's link list nothing is checked.
    static func staleness(of executable: URL, linkList: URL) -> String? {
        guard let list = try? String(contentsOf: linkList, encoding: .utf8),
            let built = modificationDate(executable.path)
        else { return nil }
        var newest: (path: String, date: Date)?
        for line in list.split(separator: "\n") {
            let path = line.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
            guard let date = modificationDate(path), date > built, date > (newest?.date ?? .distantPast) else {
                continue
            }
            newest = (path, date)
        }
        guard let newest else { return nil }
        return "\(executable.path) (linked \(built)) is older than \(newest.path) (compiled \(newest.date)): it does "
            + "not hold the tree under test; run `swift build --build-tests` (make test does)"
    }

    static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}

struct ExecutableProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The product `name` of the build under test (see `BuiltExecutable`).
func builtExecutable(_ name: String) -> BuiltExecutable { BuiltExecutable(name) }

/// Whether a suite that runs `executables` runs: when they exist (a stale one then fails the
/// tests), and always under CI, where a missing one fails too.
func runsExecutables(_ executables: BuiltExecutable...) -> Bool {
    executables.allSatisfy(\.exists) || Fixtures.isCI
}

@Suite struct BuiltExecutableTests {
    /// The executables are taken from the test bundle's own build folder, and a stale one is caught.
    @Test func executablesComeFromTheBuildUnderTestAndStaleOnesFail() throws {
        let gknet = builtExecutable("gknet")
        guard gknet.exists || Fixtures.isCI else { return }
        let url = try gknet.require()
        #expect(url.deletingLastPathComponent() == BuiltExecutable.buildFolder)
        // A link list naming an object file newer than the executable makes it stale.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-stale-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let executable = folder.appendingPathComponent("tool"), object = folder.appendingPathComponent("Tool.swift.o")
        try Data().write(to: executable)
        try Data().write(to: object)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: executable.path)
        let list = folder.appendingPathComponent("Objects.LinkFileList")
        try Data("\(object.path)\n".utf8).write(to: list)
        let message = BuiltExecutable.staleness(of: executable, linkList: list)
        #expect(message?.contains("Tool.swift.o") == true, "\(message ?? "not stale")")
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: executable.path)
        #expect(BuiltExecutable.staleness(of: executable, linkList: list) == nil)
    }
}
