// The fields of an upload, read from the request body as it arrives (RequestForms' `FormReader`:
// multipart-kit's parser with limits), and the API errors for a body that is not a good form.
import Foundation
import GKNetRequestForms
import Hummingbird
import NIOCore

/// The wanted fields of a multipart/form-data upload, by name.
struct UploadForm {
    /// Field name -> bytes (the first part of that name).
    private(set) var fields: [String: Data] = [:]

    init(fields: [String: Data]) { self.fields = fields }

    /// Reads the body from `iterator` until it ends.
    /// - Throws: `APIError` 400 (not a form, malformed, too many parts, headers too long) or 413.
    static func read(
        _ iterator: inout RequestBody.AsyncIterator, contentType: String?, fields: Set<String>, limits: FormLimits
    ) async throws -> UploadForm {
        let reader: FormReader
        do {
            reader = try FormReader(contentType: contentType, wanted: fields, limits: limits)
        } catch let error as FormError {
            throw APIError(error)
        }
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch {
                // the connection closed (the client left, or the read timeout dropped it) or the server is stopping
                throw APIError(.badRequest, "upload_cut_short", "the connection ended before the whole body arrived")
            }
            guard let chunk else { break }
            do {
                try reader.consume(chunk)
            } catch let error as FormError {
                throw APIError(error)
            }
        }
        do {
            try reader.finish()
        } catch let error as FormError {
            throw APIError(error)
        }
        return UploadForm(fields: reader.fields.mapValues { Data($0.readableBytesView) })
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
}

extension APIError {
    /// The API error for a body that is not a form this server reads.
    init(_ error: FormError) {
        let detail =
            error.kind == .tooLarge ? error.detail + " (--max-upload-mb)" : error.detail
        self.init(error.kind == .tooLarge ? .contentTooLarge : .badRequest, error.kind.rawValue, detail)
    }
}
