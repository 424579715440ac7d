// Errors of the image codecs: thrown values that name the file, never exit() or a trap.

/// A failure to read, decode, encode or write an image. `path` names the file (or the label the
/// caller gave for in-memory data); `description` is a one-line message "path: problem: detail".
public struct ImageCodecError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, for callers that branch on it (tests do).
    public enum Kind: String, Sendable, Equatable {
        /// The file could not be opened or read.
        case unreadable = "cannot read file"
        /// The file has no bytes.
        case empty = "empty file"
        /// The bytes are neither PNG nor JPEG.
        case wrongMagic = "not a PNG or JPEG file"
        /// A recognised format, but a variant this codec does not decode (or a format we do not
        /// read at all, such as WebP or GIF).
        case unsupported = "unsupported image"
        /// The data ends before the image does.
        case truncated = "truncated file"
        /// The data is damaged: bad checksum (CRC), bad compressed stream, invalid header fields.
        case corrupt = "corrupt image data"
        /// The header declares a width or height of zero.
        case zeroSize = "image has zero size"
        /// The header declares more pixels than the decode limit allows.
        case tooLarge = "image too large"
        /// Encoding or writing the output failed.
        case writeFailed = "cannot write image"
    }

    public let path: String
    public let kind: Kind
    public let detail: String

    public init(path: String, kind: Kind, detail: String) {
        self.path = path
        self.kind = kind
        self.detail = detail
    }

    public var description: String {
        detail.isEmpty ? "\(path): \(kind.rawValue)" : "\(path): \(kind.rawValue): \(detail)"
    }
}
