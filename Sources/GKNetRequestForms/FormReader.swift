// Reading a multipart/form-data request body while it arrives: multipart-kit's `MultipartParser`
// fed one piece at a time, in time linear in the body and memory bounded by the fields kept, with
// limits on the body, the number of parts and the size of their headers (README "Serve", limits).
//
// multipart-kit 4.7.1 looks each header-name byte up in a 128-entry table and traps on a byte >= 128.
// A second parser (the guard) reads every piece first, with such bytes replaced by 0x01: both
// parsers take the same path through the body (neither byte can match a boundary, CR, LF or colon),
// except that where the first would trap in a header name, the guard throws a syntax error, and the
// piece never reaches the first. The guard costs one more pass over the body.
import Foundation
import MultipartKit
import NIOCore
import NIOHTTP1

/// The limits a form is read with.
public struct FormLimits: Sendable, Equatable {
    /// Largest body in bytes (`upload_too_large` above).
    public var maximumBodyBytes = 32 << 20
    /// Most parts in one body.
    public var maximumParts = 32
    /// Most header lines of one part.
    public var maximumHeadersPerPart = 8
    /// Most bytes the parser may read without completing anything: a part's header line, or the
    /// text before the first part or after the last.
    public var maximumHeaderBytes = 16 << 10

    public init() {}
}

/// Why a body is not a form this server reads.
public struct FormError: Error, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case notMultipart = "not_multipart"
        case malformed = "bad_multipart"
        case tooManyParts = "too_many_parts"
        case headersTooLarge = "part_headers_too_large"
        case tooLarge = "upload_too_large"
    }
    public var kind: Kind
    /// One sentence for the client.
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }
}

/// A multipart/form-data body read piece by piece; keeps the first part of each wanted field name.
public final class FormReader {
    public let limits: FormLimits
    private let wanted: Set<String>
    private let parser: MultipartParser
    private let guardParser: MultipartParser
    /// Field name -> bytes of the first part with that name, for the wanted names.
    public private(set) var fields: [String: ByteBuffer] = [:]
    /// Parts completed so far.
    public private(set) var partCount = 0
    /// Body bytes read so far.
    public private(set) var bodyBytes = 0

    private var headers = HTTPHeaders()
    private var headerLines = 0
    private var nameDecided = false
    private var keptName: String?
    private var kept = ByteBuffer()
    private var partOpen = false
    private var reported = false
    private var silentBytes = 0
    private var failure: FormError?

    /// The parser feeds at most this many bytes at a time, so that the header limit holds.
    static let pieceBytes = 4096

    /// - Parameters:
    ///   - contentType: the request's Content-Type (must be multipart/form-data with a boundary).
    ///   - wanted: the field names to keep; other parts are read and dropped.
    /// - Throws: `FormError` `.notMultipart` for another or a malformed content type.
    public init(contentType: String?, wanted: Set<String>, limits: FormLimits = FormLimits()) throws {
        let boundary = try Self.boundary(contentType: contentType)
        self.limits = limits
        self.wanted = wanted
        parser = MultipartParser(boundary: boundary)
        guardParser = MultipartParser(boundary: boundary)
        parser.onHeader = { [unowned self] name, value in header(name, value) }
        parser.onBody = { [unowned self] chunk in body(&chunk) }
        parser.onPartComplete = { [unowned self] in partComplete() }
    }

    /// Reads the next bytes of the body. - Throws: `FormError` (the body cannot be a good form).
    public func consume(_ chunk: ByteBuffer) throws {
        guard chunk.readableBytes <= limits.maximumBodyBytes - bodyBytes else {
            throw FormError(
                .tooLarge, "the upload is larger than the \(limits.maximumBodyBytes >> 20) MiB this server accepts")
        }
        bodyBytes += chunk.readableBytes
        var rest = chunk
        while rest.readableBytes > 0, let piece = rest.readSlice(length: min(Self.pieceBytes, rest.readableBytes)) {
            try feed(piece)
        }
    }

    /// Ends the body. - Throws: `FormError` when it stopped inside a part or held no part.
    public func finish() throws {
        guard partCount > 0 else { throw FormError(.malformed, "the body holds no complete part") }
        guard !partOpen else { throw FormError(.malformed, "the body ends inside a part (no closing boundary)") }
    }

    private func feed(_ piece: ByteBuffer) throws {
        var guarded = piece
        guarded.withUnsafeMutableReadableBytes { bytes in
            for i in bytes.indices where bytes[i] >= 0x80 { bytes[i] = 0x01 }
        }
        do {
            try guardParser.execute(guarded)
            try parser.execute(piece)
        } catch {
            throw FormError(.malformed, "the multipart/form-data body is malformed at or before byte \(bodyBytes)")
        }
        if let failure { throw failure }
        silentBytes = reported ? 0 : silentBytes + piece.readableBytes
        reported = false
        guard silentBytes <= limits.maximumHeaderBytes else {
            throw FormError(
                .headersTooLarge,
                "a part's header line, or the text before the first part or after the last, is over "
                    + "\(limits.maximumHeaderBytes) bytes")
        }
    }

    private func header(_ name: String, _ value: String) {
        reported = true
        partOpen = true
        headerLines += 1
        guard headerLines <= limits.maximumHeadersPerPart else {
            failure = failure ?? FormError(.malformed, "a part has more than \(limits.maximumHeadersPerPart) headers")
            return
        }
        headers.add(name: name, value: value)
    }

    private func body(_ chunk: inout ByteBuffer) {
        reported = true
        partOpen = true
        if !nameDecided { decideName() }
        if keptName != nil { kept.writeBuffer(&chunk) }
    }

    private func partComplete() {
        reported = true
        if !nameDecided { decideName() }
        if let keptName { fields[keptName] = kept }
        partCount += 1
        if partCount > limits.maximumParts {
            failure = failure ?? FormError(.tooManyParts, "the form has more than \(limits.maximumParts) parts")
        }
        headers = HTTPHeaders()
        headerLines = 0
        nameDecided = false
        keptName = nil
        kept = ByteBuffer()
        partOpen = false
    }

    /// The part's field name, from its Content-Disposition header (multipart-kit reads it).
    private func decideName() {
        nameDecided = true
        let name = MultipartPart(headers: headers, body: ByteBuffer()).name
        keptName = name.flatMap { wanted.contains($0) && fields[$0] == nil ? $0 : nil }
    }

    /// The boundary of a multipart/form-data Content-Type: 1 to 70 characters of RFC 2046's set.
    /// - Throws: `FormError.notMultipart` naming what is wrong.
    public static func boundary(contentType: String?) throws -> String {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            let sent = contentType.map { "\"\($0.prefix(80))\"" } ?? "missing"
            throw FormError(.notMultipart, "send the files as multipart/form-data (Content-Type is \(sent))")
        }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            var value = pair[1]
            if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard (1...70).contains(value.utf8.count), value.utf8.allSatisfy(isBoundaryCharacter), value.last != " "
            else {
                throw FormError(
                    .notMultipart, "the multipart boundary must be 1 to 70 letters, digits or '()+_,-./:=? characters")
            }
            return value
        }
        throw FormError(.notMultipart, "the multipart/form-data Content-Type has no boundary")
    }

    /// RFC 2046 `bchars`: digits, letters, `'()+_,-./:=?` and space.
    static func isBoundaryCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "A")...UInt8(ascii: "Z"):
            return true
        default:
            return Array("'()+_,-./:=? ".utf8).contains(byte)
        }
    }
}
