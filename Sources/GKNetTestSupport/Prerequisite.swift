// Something a test needs from the machine (a library, a tool). Tests that need it run when it is
// present, and always under CI, where its absence is a failure instead of a quiet skip (README,
// "Run the tests").
import Foundation

public struct Prerequisite: Sendable {
    /// What is needed, for messages ("oneDNN (libdnnl)").
    public let name: String
    public let isPresent: Bool
    /// How to get it ("make deps installs libdnnl-dev").
    public let hint: String

    public init(_ name: String, isPresent: Bool, hint: String) {
        self.name = name
        self.isPresent = isPresent
        self.hint = hint
    }

    /// Whether the tests that need it run: it is present, or CI is set (they then fail on it).
    public var runsTests: Bool { isPresent || Fixtures.isCI }

    /// Why the tests that need it are skipped (outside CI).
    public var skipMessage: String { "\(name) is missing: \(hint) (with CI set this is a failure)" }

    /// Throws (a test failure) when it is absent: the first line of a test that needs it.
    public func require() throws {
        if !isPresent { throw MissingPrerequisite(description: "\(name) is missing: \(hint)") }
    }
}

public struct MissingPrerequisite: Error, CustomStringConvertible {
    public var description: String
}
