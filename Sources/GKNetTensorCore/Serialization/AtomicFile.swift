// Whole-file writes that never leave a half-written file behind: the data goes to a temporary
// sibling file (`.<name>.<pid>.tmp`), is flushed to disk, then renamed over the target, so a
// reader (or a process killed mid-write) sees the old file or the new one, nothing in between.
import Foundation

/// A file could not be written; the message starts with the path.
public struct FileWriteError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Atomic whole-file writes: a temporary sibling file, fsync, then rename.
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw FileWriteError("\(url.path): folder \(folder.path) does not exist")
        }
        let temporary = folder.appendingPathComponent(
            ".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw FileWriteError("\(url.path): cannot create temporary file in \(folder.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            if rename(temporary.path, url.path) != 0 {
                throw FileWriteError("\(url.path): cannot rename temporary file into place (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            if let error = error as? FileWriteError { throw error }
            throw FileWriteError("\(url.path): write failed (\(error.localizedDescription))")
        }
    }
}
