// `gknet serve`: the HTTP API and page over the inference library. Routes:
//   GET  /                 the page (upload composite + mask, or compose an object onto a photo)
//   GET  /openapi.yaml     the API description
//   POST /v1/harmonize     multipart composite + mask (+ method, format) -> the harmonized image
//   POST /v1/compose       multipart background + object (+ object_mask, x, y, scale) -> JSON with
//                          base64 PNGs of the composite, its mask and the harmonized result
//   GET  /healthz, /readyz liveness, and readiness (the model is loaded)
//   GET  /metrics          Prometheus text
// The network runs on the worker pool (never on the event loops); a full queue answers 503 with
// Retry-After, a request past its deadline 504.
import Foundation
import GKNetModel
import HTTPTypes
import Hummingbird
import ImageCodec
import Inference
import Logging
import NIOCore

/// Settings of `gknet serve`.
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// A checkpoint; nil = the bundled default model.
    public var modelPath: String?
    /// Largest request body accepted, in MiB (413 above).
    public var maximumUploadMegabytes = 32
    /// Largest image accepted, in pixels (413 above).
    public var maximumPixels = 40_000_000
    /// Harmonizations that run at once (each with its own model copy and cores / workers threads).
    public var workers = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
    /// Requests that may wait for a worker before the server answers 503.
    public var queue = 8
    /// Seconds a request may wait and run before the server answers 504.
    public var timeoutSeconds = 60.0

    public init() {}
}

/// The loaded service: worker pool with one harmonizer per worker, metrics, options.
public final class HarmonizationService: Sendable {
    public let options: ServeOptions
    let pool: WorkerPool<Harmonizer>
    public let metrics: ServiceMetrics
    /// What the page and /readyz say about the model.
    public let modelDescription: String

    /// Loads one model copy per worker. - Throws: the model loader's error (a missing or bad file).
    public init(options: ServeOptions, metrics: ServiceMetrics = ServiceMetrics()) throws {
        self.options = options
        self.metrics = metrics
        let harmonizers = try (0..<max(1, options.workers)).map { _ in
            try ModelLoading.harmonizer(path: options.modelPath)
        }
        let configuration = harmonizers[0].model.configuration
        modelDescription =
            "\(configuration.encoderWidths.map(String.init).joined(separator: "/")) widths, "
            + "\(configuration.output.rawValue) head, \(harmonizers[0].model.parameterCount) parameters"
            + (harmonizers[0].changeScale == 1 ? "" : ", change scale \(harmonizers[0].changeScale)")
        pool = WorkerPool(resources: harmonizers, queueCapacity: options.queue)
    }

    var maximumUploadBytes: Int { options.maximumUploadMegabytes * 1024 * 1024 }
    var decodeLimits: DecodeLimits {
        var limits = DecodeLimits()
        limits.maximumPixels = options.maximumPixels
        return limits
    }

    /// Stops taking new work (waiting requests get 503); running ones finish.
    public func close() { pool.close() }

    // MARK: - Routes

    /// The router of the API and page.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MetricsRecorder(metrics: metrics, pool: pool))
        router.add(middleware: APIErrorMiddleware())
        router.get("/") { _, _ in Self.staticResponse(PageAssets.indexHTML, contentType: "text/html; charset=utf-8") }
        router.get("/openapi.yaml") { _, _ in
            Self.staticResponse(PageAssets.openAPI, contentType: "application/yaml; charset=utf-8")
        }
        router.get("/healthz") { _, _ in Self.json(["status": "ok"]) }
        router.get("/readyz") { _, _ in Self.json(["status": "ready", "model": self.modelDescription]) }
        router.get("/metrics") { _, _ in
            self.metrics.queueLength.set(Double(self.pool.queueLength))
            self.metrics.busyWorkers.set(Double(self.pool.busyWorkers))
            return Self.staticResponse(
                self.metrics.registry.emitToString(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.post("/v1/harmonize") { request, _ in try await self.harmonize(request) }
        router.post("/v1/compose") { request, _ in try await self.compose(request) }
        return router
    }

    /// The upload, read up to the size limit. - Throws: `APIError` 413 past it.
    func form(_ request: Request) async throws -> MultipartForm {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumUploadBytes {
            throw APIError(
                .contentTooLarge, "upload_too_large",
                "the upload is \(length / 1024) KiB, more than the \(options.maximumUploadMegabytes) MiB this server "
                    + "accepts (--max-upload-mb)"
            )
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: maximumUploadBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(
                .contentTooLarge, "upload_too_large",
                "the upload is larger than the \(options.maximumUploadMegabytes) MiB this server accepts "
                    + "(--max-upload-mb)"
            )
        }
        return try MultipartForm(body: body, contentType: request.headers[.contentType])
    }

    /// POST /v1/harmonize.
    func harmonize(_ request: Request) async throws -> Response {
        let form = try await form(request)
        let composite = try form.file("composite"), mask = try form.file("mask")
        let method = try Self.method(form.text("method"))
        let format = try Self.format(form.text("format"))
        let limits = decodeLimits
        let started = ContinuousClock.now
        let output = try await runJob { harmonizer in
            let input = try Self.readInput(composite: composite, mask: mask, limits: limits)
            let result = try Self.harmonize(input, harmonizer: harmonizer, method: method)
            return (
                try HarmonizeJob.encodeOutput(
                    result, input: input, format: format, options: HarmonizeOptions(), path: "result"), input.warnings
            )
        }
        metrics.imagesHarmonized.increment()
        var headers: HTTPFields = [.contentType: format == .jpeg ? "image/jpeg" : "image/png"]
        headers[.contentDisposition] = "inline; filename=\"harmonized.\(format == .jpeg ? "jpg" : "png")\""
        headers[Self.timeHeader] = Self.milliseconds(since: started)
        if !output.1.isEmpty { headers[Self.warningsHeader] = Self.headerSafe(output.1.joined(separator: " | ")) }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: output.0)))
    }

    struct ComposeResult: Encodable {
        var width: Int
        var height: Int
        var composite: String
        var mask: String
        var result: String
        var milliseconds: Double
        var warnings: [String]
    }

    /// POST /v1/compose.
    func compose(_ request: Request) async throws -> Response {
        let form = try await form(request)
        let background = try form.file("background"), object = try form.file("object")
        let objectMask = form.fields["object_mask"]
        let placement = Placement(
            x: try form.number("x", in: -1e6...1e6, default: 0), y: try form.number("y", in: -1e6...1e6, default: 0),
            scale: try form.number("scale", in: 0.01...16, default: 1))
        let method = try Self.method(form.text("method"))
        let limits = decodeLimits
        let started = ContinuousClock.now
        let result = try await runJob { harmonizer -> ComposeResult in
            let (composite, mask) = try Self.composeInput(
                background: background, object: object, objectMask: objectMask, placement: placement, limits: limits)
            let input = try Self.checkedInput(composite: composite, mask: mask, bitDepth: 8)
            let harmonized = try Self.harmonize(input, harmonizer: harmonizer, method: method)
            func png(_ image: PlanarImage) throws -> String {
                try ImageFile.encode(
                    .eightBit(image.raster8()), format: .png, options: EncodeOptions(pngCompressionLevel: 1),
                    path: "result"
                ).base64EncodedString()
            }
            return ComposeResult(
                width: composite.width, height: composite.height, composite: try png(composite), mask: try png(mask),
                result: try png(harmonized), milliseconds: 0, warnings: input.warnings)
        }
        metrics.imagesHarmonized.increment()
        var body = result
        body.milliseconds = Double(Self.milliseconds(since: started)) ?? 0
        let data = try JSONEncoder().encode(body)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Runs `job` on the pool, turning refusals into API errors.
    func runJob<Output: Sendable>(_ job: @escaping @Sendable (Harmonizer) throws -> Output) async throws -> Output {
        do {
            return try await pool.run(timeout: .milliseconds(Int64(options.timeoutSeconds * 1000)), job)
        } catch let refusal as PoolRefusal {
            switch refusal {
            case .queueFull:
                metrics.rejected.increment()
                let retry = max(1, Int((options.timeoutSeconds / Double(max(1, options.queue))).rounded(.up)))
                throw APIError(
                    .serviceUnavailable, "queue_full",
                    "every worker is busy and \(options.queue) requests wait; retry later", retryAfter: min(retry, 30))
            case .timedOut:
                metrics.timedOut.increment()
                throw APIError(
                    .gatewayTimeout, "timeout",
                    "the harmonization did not finish within \(Int(options.timeoutSeconds)) s (--timeout)")
            case .closed:
                throw APIError(.serviceUnavailable, "shutting_down", "the server is shutting down", retryAfter: 5)
            }
        } catch let error as ImageCodecError {
            throw APIError.image(error, part: error.path)
        } catch let error as HarmonizeError {
            throw APIError(.unprocessableContent, "bad_mask", error.message)
        }
    }

    // MARK: - The work (on a worker thread)

    static func readInput(composite: Data, mask: Data, limits: DecodeLimits) throws -> HarmonizeInput {
        var options = HarmonizeOptions()
        options.limits = limits
        return try HarmonizeJob.readInput(
            compositeData: composite, compositeName: "composite", maskData: mask, maskName: "mask", options: options)
    }

    /// The request's method as an options value (the worker's harmonizer is not changed).
    static func harmonize(_ input: HarmonizeInput, harmonizer: Harmonizer, method: FullResolutionMethod?) throws
        -> PlanarImage
    {
        // upsampled-transform on a model without the affine head falls back to local-affine (carryToFullResolution)
        try harmonizer.harmonize(
            composite: input.composite, mask: input.mask, options: Harmonizer.Options(method: method))
    }

    static func composeInput(
        background: Data, object: Data, objectMask: Data?, placement: Placement, limits: DecodeLimits
    ) throws
        -> (PlanarImage, PlanarImage)
    {
        let backgroundImage = try HarmonizeJob.rgbPlanes(
            of: ImageFile.decode(background, path: "background", limits: limits))
        let objectImage = try ImageFile.decode(object, path: "object", limits: limits)
        let objectRGB = HarmonizeJob.rgbPlanes(of: objectImage)
        let alpha: PlanarImage
        if let objectMask {
            let decoded = try ImageFile.decode(objectMask, path: "object_mask", limits: limits)
            alpha = HarmonizeJob.maskPlane(of: decoded, snapsJPEGRinging: false).0
            guard alpha.width == objectRGB.width && alpha.height == objectRGB.height else {
                throw HarmonizeError(
                    "object_mask is \(alpha.width)x\(alpha.height) but object is \(objectRGB.width)x\(objectRGB.height)"
                )
            }
        } else if objectImage.layout.hasAlpha {
            alpha = HarmonizeJob.alphaPlane(of: objectImage)
        } else {
            throw HarmonizeError("object has no transparency: send a PNG with an alpha channel, or an object_mask")
        }
        let scaledPixels = Double(objectRGB.width * objectRGB.height) * placement.scale * placement.scale
        guard scaledPixels <= Double(limits.maximumPixels) else {
            throw ImageCodecError(path: "object", kind: .tooLarge, detail: "scaled to \(Int(scaledPixels)) pixels")
        }
        return Compositing.paste(object: objectRGB, objectMask: alpha, into: backgroundImage, at: placement)
    }

    static func checkedInput(composite: PlanarImage, mask: PlanarImage, bitDepth: Int) throws -> HarmonizeInput {
        try HarmonizeJob.checkedInput(
            composite: composite, mask: mask, alpha: nil, bitDepth: bitDepth, maskName: "mask", warnings: [])
    }

    // MARK: - Helpers

    static let timeHeader = HTTPField.Name("X-Processing-Milliseconds")!
    static let warningsHeader = HTTPField.Name("X-Harmonize-Warnings")!

    static func method(_ text: String?) throws -> FullResolutionMethod? {
        guard let text else { return nil }
        guard let method = FullResolutionMethod(rawValue: text) else {
            throw APIError(
                .badRequest, "bad_field",
                "method must be one of \(FullResolutionMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return method
    }

    static func format(_ text: String?) throws -> ImageFormat {
        switch text?.lowercased() {
        case nil, "png": return .png
        case "jpeg", "jpg": return .jpeg
        default: throw APIError(.badRequest, "bad_field", "format must be png or jpeg")
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return String(
            format: "%.1f", Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
    }

    /// Header values carry printable ASCII only.
    static func headerSafe(_ text: String) -> String {
        String(
            text.unicodeScalars.map { $0.isASCII && $0.value >= 32 && $0.value < 127 ? Character($0) : "?" }.prefix(
                1000))
    }

    static func staticResponse(_ text: String, contentType: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}
