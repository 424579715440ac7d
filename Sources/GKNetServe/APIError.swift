// Errors of the HTTP API: every failure is a JSON body {"error": ..., "detail": ...} with the
// status that names its cause; user input never produces a 500.
import Foundation
import GKNetImageCodec
import HTTPTypes
import Hummingbird

/// A failed request, as the API reports it.
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// A short machine-readable code ("unreadable_image", "queue_full", ...).
    public var code: String
    /// One human sentence: what is wrong and, where possible, what to do.
    public var detail: String
    /// Seconds after which a retry may succeed (503).
    public var retryAfter: Int?

    public init(_ status: HTTPResponse.Status, _ code: String, _ detail: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.retryAfter = retryAfter
    }

    struct Body: Encodable {
        var error: String
        var detail: String
    }

    /// The JSON response of this error.
    public func response() -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        let data = (try? JSONEncoder().encode(Body(error: code, detail: detail))) ?? Data("{}".utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The JSON response of this error for a request whose body has not been read: the body is
    /// read and dropped after the answer is sent (up to `limit` bytes, then the connection is
    /// closed), so that a client that sends its whole body before it reads (Python's urllib, which
    /// also asks to close the connection) gets the answer instead of a stalled upload.
    func response(discarding body: RequestBody, upTo limit: Int) -> Response {
        var response = response()
        let answer = (try? JSONEncoder().encode(Body(error: code, detail: detail))) ?? Data("{}".utf8)
        response.body = ResponseBody(contentLength: answer.count) { writer in
            try await writer.write(ByteBuffer(bytes: answer))
            var dropped = 0
            for try await chunk in body {
                dropped += chunk.readableBytes
                if dropped > limit { throw DiscardLimitReached() }
            }
            try await writer.finish(nil)
        }
        return response
    }

    /// A refused body was longer than the server reads and drops: the connection is closed.
    struct DiscardLimitReached: Error {}

    /// The API error for a decoding failure of an uploaded image named `part`.
    static func image(_ error: ImageCodecError, part: String) -> APIError {
        let detail = "\(part): \(error.kind.rawValue)" + (error.detail.isEmpty ? "" : " (\(error.detail))")
        switch error.kind {
        case .unsupported, .wrongMagic:
            return APIError(.unsupportedMediaType, "unsupported_image", detail + "; send PNG or JPEG")
        case .tooLarge:
            return APIError(.contentTooLarge, "image_too_large", detail)
        case .unreadable, .empty, .truncated, .corrupt, .zeroSize, .writeFailed:
            return APIError(.badRequest, "unreadable_image", detail)
        }
    }
}

/// Turns any error thrown by a route into its JSON response: `APIError` as it is, Hummingbird's
/// own errors (body too large, ...) with their status, anything else as a 500 that is logged.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch is CancellationError {
            // the server is stopping (its shutdown timeout passed) while this request waited
            return APIError(.serviceUnavailable, "shutting_down", "the server is shutting down", retryAfter: 5)
                .response()
        } catch let error as any HTTPResponseError {
            let code = error.status == .contentTooLarge ? "upload_too_large" : "http_\(error.status.code)"
            let detail =
                error.status == .contentTooLarge
                ? "the upload is larger than the server accepts (--max-upload-mb)" : (error.status.reasonPhrase)
            return APIError(error.status, code, detail).response()
        } catch {
            context.logger.error("internal error: \(error)")
            return APIError(.internalServerError, "internal_error", "the server failed; the error was logged")
                .response()
        }
    }
}
