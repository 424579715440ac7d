// A parsed multipart/form-data upload (the parsing itself is multipart-kit's `MultipartParser`).
import Foundation
import MultipartKit
import NIOCore
import NIOHTTP1

/// The parts of a multipart/form-data body, by field name.
struct MultipartForm {
    /// Field name -> bytes (the first part of that name).
    private(set) var fields: [String: Data] = [:]

    /// Parses `body` sent with `contentType` (which must be multipart/form-data with a boundary).
    /// - Throws: `APIError` 400 when the body is not a readable multipart form.
    init(body: ByteBuffer, contentType: String?) throws {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else {
            throw APIError(
                .badRequest, "not_multipart",
                "send the files as multipart/form-data (Content-Type is \(contentType ?? "missing"))")
        }
        guard let boundary = Self.boundary(in: contentType) else {
            throw APIError(.badRequest, "not_multipart", "the multipart/form-data Content-Type has no boundary")
        }
        let bytes = Data(body.readableBytesView)
        guard Self.headerNamesAreASCII(bytes, boundary: boundary) else {
            throw APIError(.badRequest, "bad_multipart", "a part header name holds a non-ASCII byte")
        }
        let parser = MultipartParser(boundary: boundary)
        var parts: [MultipartPart] = []
        var headers: [(String, String)] = []
        var partBody = ByteBuffer()
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in partBody.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(MultipartPart(headers: .init(headers), body: partBody))
            headers = []
            partBody = ByteBuffer()
        }
        do {
            try parser.execute(body)
        } catch {
            throw APIError(.badRequest, "bad_multipart", "the multipart/form-data body cannot be parsed (\(error))")
        }
        for part in parts {
            guard let name = part.name, fields[name] == nil else { continue }
            fields[name] = Data(part.body.readableBytesView)
        }
    }

    /// The bytes of a required file field. - Throws: `APIError` 400 naming the field.
    func file(_ name: String) throws -> Data {
        guard let data = fields[name] else {
            throw APIError(.badRequest, "missing_field", "the form has no field \"\(name)\"")
        }
        guard !data.isEmpty else { throw APIError(.badRequest, "unreadable_image", "\(name): empty file") }
        return data
    }

    /// A text field, trimmed; nil when absent or empty.
    func text(_ name: String) -> String? {
        guard let data = fields[name] else { return nil }
        let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty ? nil : value
    }

    /// A number field within `range`, or `defaultValue` when absent. - Throws: `APIError` 400.
    func number(_ name: String, in range: ClosedRange<Double>, default defaultValue: Double) throws -> Double {
        guard let text = text(name) else { return defaultValue }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            throw APIError(
                .badRequest, "bad_field",
                "\(name) must be a number in \(range.lowerBound)...\(range.upperBound), is \"\(text.prefix(40))\"")
        }
        return value
    }

    /// Whether every header name of every part is 7-bit ASCII. multipart-kit 4.7.1 looks header-name
    /// bytes up in a 128-entry table and traps on a byte >= 128, so such bodies are refused before
    /// they reach it (header values may hold UTF-8, e.g. file names).
    static func headerNamesAreASCII(_ bytes: Data, boundary: String) -> Bool {
        let delimiter = Data("--\(boundary)".utf8)
        var searchStart = bytes.startIndex
        while let found = bytes.range(of: delimiter, in: searchStart..<bytes.endIndex) {
            var index = found.upperBound
            searchStart = found.upperBound
            // the rest of the delimiter line, then header lines up to an empty one
            while index < bytes.endIndex && bytes[index] != 0x0A { index += 1 }
            index += 1
            while index < bytes.endIndex {
                if bytes[index] == 0x0D || bytes[index] == 0x0A { break }  // the empty line ends the headers
                var inName = true
                while index < bytes.endIndex && bytes[index] != 0x0A {
                    if bytes[index] == UInt8(ascii: ":") { inName = false }
                    if inName && bytes[index] >= 0x80 { return false }
                    index += 1
                }
                index += 1
            }
        }
        return true
    }

    /// The boundary parameter of a Content-Type value (quoted or not).
    static func boundary(in contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value =
                pair[1].hasPrefix("\"") && pair[1].hasSuffix("\"") && pair[1].count >= 2
                ? String(pair[1].dropFirst().dropLast()) : pair[1]
            return value.isEmpty ? nil : value
        }
        return nil
    }
}
