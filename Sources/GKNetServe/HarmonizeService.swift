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
import GKNetImageCodec
import GKNetInference
import GKNetModel
import GKNetRequestForms
import GKNetTensorCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Settings of `gknet serve` (README "Serve" lists every limit with its default).
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// A checkpoint; nil = the bundled default model.
    public var modelPath: String?
    /// Largest request body accepted, in MiB (413 above).
    public var maximumUploadMegabytes = 32
    /// Largest image accepted, in pixels (413 above).
    public var maximumPixels = 40_000_000
    /// Harmonizations that run at once (each with its own model copy and thread count).
    public var workers = 1
    /// Requests that may wait for a worker before the server answers 503.
    public var queue = 8
    /// Seconds a request may wait and run before the server answers 504.
    public var timeoutSeconds = 60.0
    /// Seconds a client has to send a whole request (headers and body); then the connection is closed.
    public var readTimeoutSeconds = 60.0
    /// Seconds a connection may stay silent (nothing read, no response in progress) before it is closed.
    public var idleTimeoutSeconds = 15.0
    /// Open connections at most; further clients wait in the listen backlog.
    public var maximumConnections = 128
    /// Seconds SIGTERM/SIGINT waits for running requests before the server stops anyway.
    public var shutdownTimeoutSeconds = 10.0
    /// Bytes of a refused upload read and dropped so that a client that sends its whole body before
    /// reading (Python's urllib) sees the error; past this the connection is closed.
    public var discardLimitBytes = 1 << 30
    /// The key clients must send (X-API-Key or Authorization: Bearer) to POST /v1/...; nil = none.
    public var apiKey: String?
    /// The one origin allowed to call the API from another site's page (CORS); nil = none.
    public var allowedOrigin: String?
    /// Form limits besides the body size (parts, headers).
    public var formLimits = FormLimits()

    public init() {}
}

/// The request context of `gknet serve`: Hummingbird's, plus the connection (to notice a client
/// that goes away while its job runs).
public struct ServeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The loaded service: worker pool with one harmonizer per worker, metrics, options.
public final class HarmonizeService: Sendable {
    public let options: ServeOptions
    let pool: WorkerPool<Harmonizer>
    public let metrics: ServiceMetrics
    /// What the page and /readyz say about the model.
    public let modelDescription: String
    /// The engine thread count each worker thread runs with (the process setting when the service was made).
    public let engineThreads: Int
    /// Jobs in flight by connection (`RequestDeadlineHandler` cancels them when the client leaves).
    public let clients = ClientWatch()

    /// Loads one model copy per worker; each worker thread runs the engine at `Threading.count`
    /// threads. - Throws: the model loader's error (a missing or bad file).
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
            + (harmonizers[0].changeGate == nil ? "" : ", change gate on")
        let engineThreads = Threading.count
        self.engineThreads = engineThreads
        pool = WorkerPool(resources: harmonizers, queueCapacity: options.queue) {
            Threading.applyToCurrentThread(threads: engineThreads)
        }
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

    static let harmonizeFields: Set<String> = ["composite", "mask", "method", "format"]
    static let composeFields: Set<String> = ["background", "object", "object_mask", "x", "y", "scale", "method"]

    /// The router of the API and page.
    public func router() -> Router<ServeRequestContext> {
        let router = Router(context: ServeRequestContext.self)
        router.add(middleware: MetricsRecorder(metrics: metrics, pool: pool))
        router.add(middleware: APIErrorMiddleware())
        if let origin = options.allowedOrigin {
            router.add(
                middleware: CORSMiddleware(
                    allowOrigin: .custom(origin), allowHeaders: [.contentType, .authorization, Self.apiKeyHeader],
                    allowMethods: [.get, .post, .options],
                    exposedHeaders: [
                        Self.timeHeader.rawName, Self.warningsHeader.rawName, Self.changeKeptHeader.rawName,
                        "Retry-After",
                    ]))
        }
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
        router.post("/v1/harmonize") { request, context in
            try await self.upload(request, context: context, fields: Self.harmonizeFields) { form, control in
                try await self.harmonize(form, control: control)
            }
        }
        router.post("/v1/compose") { request, context in
            try await self.upload(request, context: context, fields: Self.composeFields) { form, control in
                try await self.compose(form, control: control)
            }
        }
        return router
    }

    /// An upload route: the refusals that need no body first (key, size, full queue), answered
    /// before the body is read; then the form, read as it arrives; then `work`, whose job is
    /// cancelled when the client goes away. A refused body is read and dropped after the answer
    /// (up to `discardLimitBytes`) so that every client sees it.
    func upload(
        _ request: Request, context: ServeRequestContext, fields: Set<String>,
        work: (UploadForm, JobControl) async throws -> Response
    ) async throws -> Response {
        if let refusal = earlyRefusal(request) {
            if refusal.code == "queue_full" { metrics.rejected.increment() }
            return refusal.response(discarding: request.body, upTo: options.discardLimitBytes)
        }
        var limits = options.formLimits
        limits.maximumBodyBytes = maximumUploadBytes
        var iterator = request.body.makeAsyncIterator()
        let form: UploadForm
        do {
            form = try await UploadForm.read(
                &iterator, contentType: request.headers[.contentType], fields: fields, limits: limits)
        } catch let error as APIError {
            // the rest of the body is dropped before the answer (a client may still be sending it)
            do {
                try await Self.discard(&iterator, upTo: options.discardLimitBytes)
            } catch {
                context.channel.close(promise: nil)
            }
            throw error
        }
        let control = JobControl()
        let connection = ObjectIdentifier(context.channel)
        clients.register(control, for: connection)
        defer { clients.unregister(connection) }
        return try await work(form, control)
    }

    /// Why a request is refused before its body is read, if it is.
    func earlyRefusal(_ request: Request) -> APIError? {
        if let key = options.apiKey, !Self.carriesKey(request, key) {
            return APIError(
                .unauthorized, "unauthorized",
                "this server needs its API key: send it in the X-API-Key header (or Authorization: Bearer KEY)")
        }
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > maximumUploadBytes {
            return APIError(
                .contentTooLarge, "upload_too_large",
                "the upload is \(length / 1024) KiB, more than the \(options.maximumUploadMegabytes) MiB this server "
                    + "accepts (--max-upload-mb)"
            )
        }
        if pool.isFull { return queueFull() }
        return nil
    }

    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    /// Whether the request carries `key` (X-API-Key, or Authorization: Bearer), compared in time
    /// independent of where they differ.
    static func carriesKey(_ request: Request, _ key: String) -> Bool {
        var sent = request.headers[apiKeyHeader]
        if sent == nil, let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") {
            sent = String(authorization.dropFirst("Bearer ".count))
        }
        guard let sent else { return false }
        let (a, b) = (Array(sent.utf8), Array(key.utf8))
        var difference = a.count ^ b.count
        for i in 0..<max(a.count, b.count) {
            difference |= Int(i < a.count ? a[i] : 0) ^ Int(i < b.count ? b[i] : 0)
        }
        return difference == 0
    }

    /// Reads and drops the rest of a body, up to `limit` bytes. - Throws: past the limit (the
    /// connection is then closed).
    static func discard(_ iterator: inout RequestBody.AsyncIterator, upTo limit: Int) async throws {
        var dropped = 0
        while let chunk = try await iterator.next() {
            dropped += chunk.readableBytes
            if dropped > limit { throw APIError.DiscardLimitReached() }
        }
    }

    func queueFull() -> APIError {
        let retry = max(1, Int((options.timeoutSeconds / Double(max(1, options.queue))).rounded(.up)))
        return APIError(
            .serviceUnavailable, "queue_full",
            "every worker is busy and \(options.queue) requests wait; retry later", retryAfter: min(retry, 30))
    }

    /// POST /v1/harmonize.
    func harmonize(_ form: UploadForm, control: JobControl) async throws -> Response {
        let composite = try form.file("composite"), mask = try form.file("mask")
        let method = try Self.method(form.text("method"))
        let format = try Self.format(form.text("format"))
        let limits = decodeLimits
        let started = ContinuousClock.now
        let output = try await runJob(control: control) { harmonizer in
            let input = try Self.readInput(composite: composite, mask: mask, limits: limits)
            try control.check()
            let result = try Self.harmonize(input, harmonizer: harmonizer, method: method, control: control)
            try control.check()
            return (
                try HarmonizeJob.encodeOutput(
                    result, input: input, format: format, options: HarmonizeOptions(), path: "result"), input.warnings,
                harmonizer.storesChangeAdjustment ? harmonizer.lastChangeKept : nil
            )
        }
        metrics.imagesHarmonized.increment()
        var headers: HTTPFields = [.contentType: format == .jpeg ? "image/jpeg" : "image/png"]
        headers[.contentDisposition] = "inline; filename=\"harmonized.\(format == .jpeg ? "jpg" : "png")\""
        headers[Self.timeHeader] = Self.milliseconds(since: started)
        if !output.1.isEmpty { headers[Self.warningsHeader] = Self.headerSafe(output.1.joined(separator: " | ")) }
        if let kept = output.2 { headers[Self.changeKeptHeader] = String(format: "%.3f", kept) }
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
    func compose(_ form: UploadForm, control: JobControl) async throws -> Response {
        let background = try form.file("background"), object = try form.file("object")
        let objectMask = form.fields["object_mask"]
        let placement = Placement(
            x: try form.number("x", in: -1e6...1e6, default: 0), y: try form.number("y", in: -1e6...1e6, default: 0),
            scale: try form.number("scale", in: 0.01...16, default: 1))
        let method = try Self.method(form.text("method"))
        let limits = decodeLimits
        let started = ContinuousClock.now
        let result = try await runJob(control: control) { harmonizer -> ComposeResult in
            let (composite, mask) = try Self.composeInput(
                background: background, object: object, objectMask: objectMask, placement: placement, limits: limits)
            try control.check()
            let input = try Self.checkedInput(composite: composite, mask: mask, bitDepth: 8)
            let harmonized = try Self.harmonize(input, harmonizer: harmonizer, method: method, control: control)
            try control.check()
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
    /// Runs `job` on the pool, turning refusals into API errors. `control` is cancelled at the
    /// deadline (and by the connection when the client leaves); the job checks it between stages.
    func runJob<Output: Sendable>(
        control: JobControl = JobControl(), _ job: @escaping @Sendable (Harmonizer) throws -> Output
    ) async throws -> Output {
        do {
            return try await pool.run(
                timeout: .milliseconds(Int64(options.timeoutSeconds * 1000)), control: control, job)
        } catch let refusal as PoolRefusal {
            switch refusal {
            case .queueFull:
                metrics.rejected.increment()
                throw queueFull()
            case .timedOut:
                metrics.timedOut.increment()
                throw APIError(
                    .gatewayTimeout, "timeout",
                    "the harmonization did not finish within \(Int(options.timeoutSeconds)) s (--timeout)")
            case .closed:
                throw APIError(.serviceUnavailable, "shutting_down", "the server is shutting down", retryAfter: 5)
            case .cancelled:
                metrics.cancelled.increment()
                throw APIError(.serviceUnavailable, "cancelled", "the job was stopped (client gone or shutting down)")
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
        options.maskSizeAdvice = "send a mask of the composite's size"
        return try HarmonizeJob.readInput(
            compositeData: composite, compositeName: "composite", maskData: mask, maskName: "mask", options: options)
    }

    /// The request's method as an options value (the worker's harmonizer is not changed); `control` stops
    /// the job after the network when its client went away or its deadline passed.
    static func harmonize(
        _ input: HarmonizeInput, harmonizer: Harmonizer, method: FullResolutionMethod?, control: JobControl
    ) throws -> PlanarImage {
        // upsampled-transform on a model without the affine head falls back to local-affine (carryToFullResolution)
        try harmonizer.harmonize(
            composite: input.composite, mask: input.mask, options: Harmonizer.Options(method: method),
            afterStage: { stage in if stage == .network { try control.check() } })
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
    /// The share of the network's change kept (the model's change gate and scale; 0 = the composite
    /// returned as it is); sent when the model stores either.
    static let changeKeptHeader = HTTPField.Name("X-Change-Kept")!

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
