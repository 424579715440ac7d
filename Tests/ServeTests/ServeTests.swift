// gknet serve's API with HummingbirdTesting (no sockets): every status the API promises (200,
// 400, 413, 415, 422, 503, 504), 16-bit PNG and EXIF-rotated JPEG uploads, the compose endpoint,
// metrics, and the worker pool's queue and deadline.
import Dispatch
import Foundation
import GKNetImageCodec
import GKNetInference
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import GKNetServe

/// A tiny random model with a non-zero residual head, so the result differs from the composite.
private let modelPath: String = {
    var configuration = try! GKNetConfiguration.preset("tiny")
    configuration.output = .residual
    let model = try! GKNet(configuration: configuration, seed: 5)
    for (name, parameter) in model.namedParameters() where name.hasPrefix("head.") {
        parameter.data = parameter.data.indices.map { Float(($0 % 7) - 3) * 0.01 }
    }
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "gknet-serve-tests-\(UUID().uuidString).safetensors")
    try! Checkpoint.save(model, to: url, configuration: model.configuration)
    return url.path
}()

private func makeService(_ change: (inout ServeOptions) -> Void = { _ in }) throws -> HarmonizeService {
    var options = ServeOptions()
    options.modelPath = modelPath
    options.workers = 1
    change(&options)
    return try HarmonizeService(options: options)
}

/// A multipart/form-data body of `fields` (name, file name or nil, bytes).
private func multipart(_ fields: [(String, String?, Data)]) -> (ByteBuffer, HTTPFields) {
    let boundary = "gknet-test-boundary-\(UUID().uuidString)"
    var body = Data()
    for (name, file, data) in fields {
        body.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"".utf8))
        if let file { body.append(Data("; filename=\"\(file)\"\r\nContent-Type: application/octet-stream".utf8)) }
        body.append(Data("\r\n\r\n".utf8))
        body.append(data)
        body.append(Data("\r\n".utf8))
    }
    body.append(Data("--\(boundary)--\r\n".utf8))
    return (ByteBuffer(bytes: body), [.contentType: "multipart/form-data; boundary=\(boundary)"])
}

private func png(
    width: Int, height: Int, layout: PixelLayout = .rgb, sixteenBit: Bool = false, _ value: (Int, Int, Int) -> Int
) -> Data {
    let channels = layout.channels
    if sixteenBit {
        var samples = [UInt16](repeating: 0, count: width * height * channels)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { samples[(y * width + x) * channels + c] = UInt16(value(x, y, c) * 257) }
            }
        }
        return try! ImageFile.encode(
            .sixteenBit(RasterImage16(width: width, height: height, layout: layout, samples: samples)), format: .png)
    }
    var samples = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
        for x in 0..<width { for c in 0..<channels { samples[(y * width + x) * channels + c] = UInt8(value(x, y, c)) } }
    }
    return try! ImageFile.encode(
        .eightBit(RasterImage8(width: width, height: height, layout: layout, samples: samples)), format: .png)
}

private func composite(_ width: Int = 96, _ height: Int = 64, sixteenBit: Bool = false) -> Data {
    png(width: width, height: height, sixteenBit: sixteenBit) { x, y, c in (x * 2 + y * 3 + c * 40) % 256 }
}

/// White in a rectangle in the middle, black elsewhere.
private func mask(_ width: Int = 96, _ height: Int = 64, empty: Bool = false) -> Data {
    png(width: width, height: height, layout: .gray) { x, y, _ in
        !empty && x >= width / 4 && x < 3 * width / 4 && y >= height / 4 && y < 3 * height / 4 ? 255 : 0
    }
}

private func errorCode(_ response: TestResponse) -> String? {
    struct Body: Decodable {
        var error: String
        var detail: String
    }
    return (try? JSONDecoder().decode(Body.self, from: Data(response.body.readableBytesView)))?.error
}

private func app(_ service: HarmonizeService) -> some ApplicationProtocol {
    Application(router: service.router())
}

@Suite struct ServeTests {
    @Test func healthReadinessPageOpenAPIAndMetrics() async throws {
        let service = try makeService()
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("residual head"))
            }
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains("/v1/compose"))
            }
            try await client.execute(uri: "/openapi.yaml", method: .get) { response in
                #expect(String(buffer: response.body).hasPrefix("openapi: 3"))
            }
            try await client.execute(uri: "/nothing-here", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(errorCode(response) != nil)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("gknet_http_requests_total{route=\"/healthz\",status=\"200\"} 1"))
                #expect(text.contains("gknet_request_duration_seconds_bucket"))
                #expect(text.contains("gknet_queue_length"))
            }
        }
    }

    /// A model whose change gate closes on every image: the composite comes back unchanged and the
    /// response says that none of the change was kept.
    @Test func aClosedChangeGateReturnsTheCompositeAndSaysSo() async throws {
        var file = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: modelPath))
        let count = ChangeGate.featureCount
        let closed = ChangeGate(
            mean: Array(repeating: 0, count: count), deviation: Array(repeating: 1, count: count),
            weights: Array(repeating: 0, count: count), bias: -5, threshold: 0.5)
        file.metadata[ChangeGate.metadataKey] = try closed.metadataValue()
        let gated = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-serve-gated-\(UUID().uuidString).safetensors")
        try file.write(to: gated)
        defer { try? FileManager.default.removeItem(at: gated) }
        let service = try makeService { $0.modelPath = gated.path }
        let compositeData = composite()
        let (body, headers) = multipart([("composite", "c.png", compositeData), ("mask", "m.png", mask())])
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-Change-Kept")!] == "0.000")
                let result = try ImageFile.decode(Data(response.body.readableBytesView), path: "result")
                let input = try ImageFile.decode(compositeData, path: "composite")
                guard case .eightBit(let out) = result, case .eightBit(let original) = input else {
                    Issue.record("expected 8-bit images")
                    return
                }
                #expect(out.samples == original.samples)
            }
        }
    }

    @Test func harmonizeReturnsAnImageThatChangesOnlyInsideTheMask() async throws {
        let service = try makeService()
        let compositeData = composite(), maskData = mask()
        let (body, headers) = multipart([("composite", "c.png", compositeData), ("mask", "m.png", maskData)])
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/png")
                #expect(response.headers[HTTPField.Name("X-Processing-Milliseconds")!] != nil)
                #expect(response.headers[HTTPField.Name("X-Change-Kept")!] == nil)  // no gate, no scale
                let result = try ImageFile.decode(Data(response.body.readableBytesView), path: "result")
                let input = try ImageFile.decode(compositeData, path: "composite")
                guard case .eightBit(let out) = result, case .eightBit(let original) = input else {
                    Issue.record("expected 8-bit images")
                    return
                }
                #expect(out.width == 96 && out.height == 64 && out.layout == .rgb)
                var insideChanged = false
                for y in 0..<64 {
                    for x in 0..<96 {
                        let inside = x >= 24 && x < 72 && y >= 16 && y < 48
                        for c in 0..<3 {
                            let i = (y * 96 + x) * 3 + c
                            if inside {
                                insideChanged = insideChanged || out.samples[i] != original.samples[i]
                            } else {
                                #expect(out.samples[i] == original.samples[i])
                            }
                        }
                    }
                }
                #expect(insideChanged)
            }
            // JPEG output on request
            let (jpegBody, jpegHeaders) = multipart([
                ("composite", nil, compositeData), ("mask", nil, maskData), ("format", nil, Data("jpeg".utf8)),
            ])
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: jpegHeaders, body: jpegBody) {
                response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/jpeg")
            }
        }
    }

    @Test func sixteenBitPNGStaysSixteenBitAndEXIFRotationIsApplied() async throws {
        let service = try makeService()
        let (body, headers) = multipart([("composite", nil, composite(sixteenBit: true)), ("mask", nil, mask())])
        let rotated = try Data(contentsOf: Fixtures.url("images/orientation6.jpg"))
        let decoded = try ImageFile.decode(rotated, path: "orientation6.jpg")
        let (rotatedBody, rotatedHeaders) = multipart([
            ("composite", nil, rotated), ("mask", nil, mask(decoded.width, decoded.height)),
        ])
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok)
                let result = try ImageFile.decode(Data(response.body.readableBytesView), path: "result")
                #expect(result.bitDepth == 16)
            }
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: rotatedHeaders, body: rotatedBody) {
                response in
                #expect(response.status == .ok)
                let result = try ImageFile.decode(Data(response.body.readableBytesView), path: "result")
                #expect(result.width == decoded.width && result.height == decoded.height)
            }
        }
    }

    @Test func everyInputErrorHasItsStatus() async throws {
        let service = try makeService {
            $0.maximumUploadMegabytes = 1
            $0.maximumPixels = 100_000
        }
        let good = composite(), goodMask = mask()
        var truncated = good
        truncated.removeLast(good.count / 2)
        let gif = Data("GIF89a".utf8) + Data(repeating: 0, count: 64)
        let cases: [(String, [(String, String?, Data)], HTTPResponse.Status, String)] = [
            (
                "truncated PNG", [("composite", nil, truncated), ("mask", nil, goodMask)], .badRequest,
                "unreadable_image"
            ),
            ("missing mask", [("composite", nil, good)], .badRequest, "missing_field"),
            (
                "bad format field",
                [("composite", nil, good), ("mask", nil, goodMask), ("format", nil, Data("tiff".utf8))], .badRequest,
                "bad_field"
            ),
            ("GIF", [("composite", nil, gif), ("mask", nil, goodMask)], .unsupportedMediaType, "unsupported_image"),
            (
                "too many pixels", [("composite", nil, composite(400, 300)), ("mask", nil, mask(400, 300))],
                .contentTooLarge, "image_too_large"
            ),
            (
                "size mismatch", [("composite", nil, good), ("mask", nil, mask(64, 96))], .unprocessableContent,
                "bad_mask"
            ),
            (
                "empty mask", [("composite", nil, good), ("mask", nil, mask(empty: true))], .unprocessableContent,
                "bad_mask"
            ),
            (
                "upload too large",
                [("composite", nil, Data(repeating: 7, count: 1_200_000)), ("mask", nil, goodMask)], .contentTooLarge,
                "upload_too_large"
            ),
        ]
        try await app(service).test(.router) { client in
            for (label, fields, status, code) in cases {
                let (body, headers) = multipart(fields)
                try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) {
                    response in
                    #expect(response.status == status, "\(label): \(response.status)")
                    #expect(errorCode(response) == code, "\(label): \(String(buffer: response.body))")
                }
            }
            // the mask-size error tells an API client what to send, not a command-line flag
            let (mismatch, mismatchHeaders) = multipart([("composite", nil, good), ("mask", nil, mask(64, 96))])
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: mismatchHeaders, body: mismatch) {
                response in
                let text = String(buffer: response.body)
                #expect(text.contains("send a mask of the composite's size") && !text.contains("--resize-mask"))
            }
            // a non-ASCII byte in a part's header name (trapped inside multipart-kit 4.7.1; found by schemathesis)
            var hostile = Data("--b\r\nContent-Disposition: form-data; name=\"composite\"\r\n".utf8)
            hostile.append(contentsOf: [0xC3, 0xA9, 0x3A, 0x20, 0x78, 0x0D, 0x0A, 0x0D, 0x0A])
            hostile.append(Data("x\r\n--b--\r\n".utf8))
            try await client.execute(
                uri: "/v1/harmonize", method: .post, headers: [.contentType: "multipart/form-data; boundary=b"],
                body: ByteBuffer(bytes: hostile)
            ) { response in
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == "bad_multipart")
            }
            // UTF-8 in a header value (a file name) is fine
            let (utf8Body, utf8Headers) = multipart([
                ("composite", "fotó.png", good), ("mask", "maszk-é.png", goodMask),
            ])
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: utf8Headers, body: utf8Body) {
                response in
                #expect(response.status == .ok)
            }
            try await client.execute(
                uri: "/v1/harmonize", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == "not_multipart")
            }
        }
    }

    @Test func fullQueueAnswers503WithRetryAfterAndSlowRequestsAnswer504() async throws {
        let service = try makeService {
            $0.queue = 0
            $0.timeoutSeconds = 0.5
        }
        let release = DispatchSemaphore(value: 0)
        // occupy the only worker
        let blocker = Task { try await service.pool.run(timeout: .seconds(30)) { _ in release.wait() } }
        while service.pool.busyWorkers == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let (body, headers) = multipart([("composite", nil, composite()), ("mask", nil, mask())])
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] != nil)
                #expect(errorCode(response) == "queue_full")
            }
        }
        release.signal()
        try await blocker.value

        let waiting = try makeService {
            $0.queue = 4
            $0.timeoutSeconds = 0.3
        }
        let hold = DispatchSemaphore(value: 0)
        let occupied = Task { try await waiting.pool.run(timeout: .seconds(30)) { _ in hold.wait() } }
        while waiting.pool.busyWorkers == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await app(waiting).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .gatewayTimeout)
                #expect(errorCode(response) == "timeout")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(String(buffer: response.body).contains("gknet_timeouts_total 1"))
            }
        }
        hold.signal()
        try await occupied.value
    }

    @Test func composePastesTheObjectAndHarmonizesIt() async throws {
        let service = try makeService()
        let background = composite(120, 80)
        let object = png(width: 30, height: 20, layout: .rgba) { x, y, c in
            c == 3 ? (x > 2 && x < 27 ? 255 : 0) : 200 - c * 60
        }
        let (body, headers) = multipart([
            ("background", nil, background), ("object", nil, object), ("x", nil, Data("10".utf8)),
            ("y", nil, Data("20".utf8)),
            ("scale", nil, Data("1.5".utf8)),
        ])
        struct Result: Decodable {
            var width: Int
            var height: Int
            var composite: String
            var mask: String
            var result: String
            var milliseconds: Double
        }
        try await app(service).test(.router) { client in
            try await client.execute(uri: "/v1/compose", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .ok)
                let decoded = try JSONDecoder().decode(Result.self, from: Data(response.body.readableBytesView))
                #expect(decoded.width == 120 && decoded.height == 80)
                let maskImage = PlanarImage(
                    mask: try ImageFile.decode(try #require(Data(base64Encoded: decoded.mask)), path: "mask"))
                // the object (45 x 30 after scaling) covers x 10..<55, y 20..<50, minus its transparent edges
                #expect(maskImage.values[30 * 120 + 30] > 0.99)
                #expect(maskImage.values[5 * 120 + 5] == 0 && maskImage.values[60 * 120 + 100] == 0)
                #expect(decoded.result != decoded.composite)
            }
            // an object without transparency needs object_mask
            let (opaque, opaqueHeaders) = multipart([
                ("background", nil, background), ("object", nil, composite(30, 20)),
            ])
            try await client.execute(uri: "/v1/compose", method: .post, headers: opaqueHeaders, body: opaque) {
                response in
                #expect(response.status == .unprocessableContent)
            }
            // placed entirely outside the background: nothing to harmonize
            let (outside, outsideHeaders) = multipart([
                ("background", nil, background), ("object", nil, object), ("x", nil, Data("500".utf8)),
            ])
            try await client.execute(uri: "/v1/compose", method: .post, headers: outsideHeaders, body: outside) {
                response in
                #expect(response.status == .unprocessableContent)
            }
            let (badScale, badScaleHeaders) = multipart([
                ("background", nil, background), ("object", nil, object), ("scale", nil, Data("nan".utf8)),
            ])
            try await client.execute(uri: "/v1/compose", method: .post, headers: badScaleHeaders, body: badScale) {
                response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test func workerPoolRunsInOrderAndRefusesBeyondItsQueue() async throws {
        // deadlines far away: a loaded machine must not expire a waiter while the test sets up
        let pool = WorkerPool(resources: [0, 1], queueCapacity: 3)
        let gate = DispatchSemaphore(value: 0)
        let started = Recorder()
        let giveUp = ContinuousClock.now + .seconds(600)
        // occupy both workers
        let blockers = (0..<2).map { _ in
            Task { try await pool.run(timeout: .seconds(900)) { _ in _ = gate.wait(timeout: .now() + 700) } }
        }
        while pool.busyWorkers < 2 && ContinuousClock.now < giveUp { try await Task.sleep(for: .milliseconds(5)) }
        // three requests queue up one after the other: they must start in that order
        var waiting: [Task<Int, any Error>] = []
        for request in 1...3 {
            waiting.append(
                Task {
                    try await pool.run(timeout: .seconds(900)) { worker in
                        started.append(request)
                        return worker
                    }
                })
            while pool.queueLength < request && ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        #expect(pool.isFull)
        await #expect(throws: PoolRefusal.queueFull) { try await pool.run(timeout: .seconds(10)) { $0 } }
        // free one worker only: the queue drains through it, one request at a time, first come first served
        gate.signal()
        var workers: [Int] = []
        for task in waiting { workers.append(try await task.value) }
        #expect(started.values == [1, 2, 3])
        #expect(Set(workers).count == 1)
        gate.signal()
        for blocker in blockers { try await blocker.value }
        #expect(pool.busyWorkers == 0 && pool.queueLength == 0)
    }

    @Test func aJobThatRunsPastItsDeadlineAnswers504AndStopsAtItsNextStage() async throws {
        let service = try makeService { $0.timeoutSeconds = 0.3 }
        let stages = Recorder()
        let control = JobControl()
        let release = DispatchSemaphore(value: 0)
        let request = Task {
            try await service.runJob(control: control) { _ in
                // stage 1 runs until the deadline has cancelled the job (at most 300 s, on a loaded
                // machine); then the check before stage 2 must stop it
                stages.append(1)
                let giveUp = Date().addingTimeInterval(300)
                while !control.cancelled && Date() < giveUp { Thread.sleep(forTimeInterval: 0.01) }
                _ = release.wait(timeout: .now())
                try control.check()
                stages.append(2)
            }
        }
        let result = await request.result
        // the 504 came while the job was still in its first stage
        let answered = stages.values
        release.signal()
        guard case .failure(let error as APIError) = result else {
            Issue.record("expected a 504, got \(result)")
            return
        }
        #expect(error.status == .gatewayTimeout && error.code == "timeout")
        #expect(answered == [1])
        #expect(control.cancelled)
        while service.pool.busyWorkers > 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(stages.values == [1])
        #expect(service.metrics.registry.emitToString().contains("gknet_timeouts_total 1"))
    }

    @Test func aCancelledJobDoesNotStartAndEachWorkerThreadHasTheEngineThreadCount() async throws {
        let service = try makeService()
        let control = JobControl()
        control.cancel()
        await #expect(throws: APIError.self) { try await service.runJob(control: control) { _ in 1 } }
        let threads = try await service.runJob { _ in Threading.currentThreadLibraryThreads }
        // against the count the service gave its workers: other tests of this process may change the
        // process setting meanwhile
        #expect(threads == service.engineThreads)
    }

    @Test func anAPIKeyIsNeededWhenSetAndCrossOriginOnlyWhenAllowed() async throws {
        let service = try makeService {
            $0.apiKey = "s3cret-key"
            $0.allowedOrigin = "https://site.example"
        }
        let (body, headers) = multipart([("composite", nil, composite()), ("mask", nil, mask())])
        try await app(service).test(.router) { client in
            for sent in [nil, "wrong", "s3cret-kez", "s3cret-key-longer"] as [String?] {
                var withKey = headers
                if let sent { withKey[HTTPField.Name("X-API-Key")!] = sent }
                try await client.execute(uri: "/v1/harmonize", method: .post, headers: withKey, body: body) {
                    #expect($0.status == .unauthorized, "key \(sent ?? "none")")
                    #expect(errorCode($0) == "unauthorized")
                }
            }
            var keyed = headers
            keyed[HTTPField.Name("X-API-Key")!] = "s3cret-key"
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: keyed, body: body) {
                #expect($0.status == .ok)
            }
            var bearer = headers
            bearer[.authorization] = "Bearer s3cret-key"
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: bearer, body: body) {
                #expect($0.status == .ok)
            }
            // the page, health and API description need no key
            try await client.execute(uri: "/", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(
                uri: "/v1/harmonize", method: .options,
                headers: [.origin: "https://site.example", .accessControlRequestMethod: "POST"]
            ) { response in
                #expect(response.headers[.accessControlAllowOrigin] == "https://site.example")
            }
        }
        // by default: no key, no cross-origin answer
        let open = try makeService()
        var elsewhereHeaders = headers
        elsewhereHeaders[.origin] = "https://elsewhere.example"
        let elsewhere = elsewhereHeaders
        try await app(open).test(.router) { client in
            try await client.execute(uri: "/v1/harmonize", method: .post, headers: elsewhere, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.accessControlAllowOrigin] == nil)
            }
        }
    }

    @Test func earlyRefusalsComeBeforeTheBody() async throws {
        // a Content-Length over the limit, and a full queue, are answered without reading the form
        let service = try makeService {
            $0.maximumUploadMegabytes = 1
            $0.queue = 0
        }
        let junk = ByteBuffer(bytes: [UInt8](repeating: 0x2D, count: 2 << 20))
        try await app(service).test(.router) { client in
            try await client.execute(
                uri: "/v1/harmonize", method: .post, headers: [.contentType: "multipart/form-data; boundary=b"],
                body: junk
            ) { response in
                #expect(response.status == .contentTooLarge)
                #expect(errorCode(response) == "upload_too_large")
            }
        }
        let hold = DispatchSemaphore(value: 0)
        let occupied = Task { try await service.pool.run(timeout: .seconds(30)) { _ in hold.wait() } }
        while service.pool.busyWorkers == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await app(service).test(.router) { client in
            try await client.execute(
                uri: "/v1/harmonize", method: .post, headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: "not even a form")
            ) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(errorCode(response) == "queue_full")
            }
        }
        hold.signal()
        try await occupied.value
    }
}

/// Values appended from several threads.
private final class Recorder: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ value: Int) { lock.withLock { list.append(value) } }
    var values: [Int] { lock.withLock { list } }
}
