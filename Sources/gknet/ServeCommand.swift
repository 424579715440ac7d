// `gknet serve`: the harmonization web service and page (GKNetServe) on Hummingbird.
import ArgumentParser
import Foundation
import GKNetServe
import GKNetTensorCore
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

extension GKNetCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the harmonization API and a page for the browser.",
            discussion: """
                Open http://HOST:PORT/ in a browser, or call POST /v1/harmonize and POST /v1/compose \
                (the API is described at /openapi.yaml). SIGINT or SIGTERM stops the server gracefully: \
                no new requests start, and those in progress get --shutdown-timeout seconds to finish. \
                Every limit and its default is listed in the README ("Serve").
                """)

        @Option(help: "Address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every interface).")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on.")
        var port = 8080

        @Option(help: "A checkpoint from gknet train or gknet export (default: the bundled model).")
        var model: String?

        @Option(name: .customLong("max-upload-mb"), help: "Largest request body in MiB, 1...1024 (413 above).")
        var maxUploadMB = 32

        @Option(name: .customLong("maximum-pixels"), help: "Largest image in pixels (413 above).")
        var maximumPixels = 40_000_000

        @Option(help: "Harmonizations run at once; each has its own model copy (default 1: docs/benchmarks.md).")
        var workers = 1

        @Option(help: "Threads of each worker (default: the cores shared out between the workers, or GKNET_THREADS).")
        var threads: Int?

        @Option(help: "Requests that may wait for a worker before the server answers 503.")
        var queue = 8

        @Option(help: "Seconds a request may wait and run before the server answers 504.")
        var timeout = 60.0

        @Option(name: .customLong("read-timeout"), help: "Seconds a client has to send a whole request.")
        var readTimeout = 60.0

        @Option(name: .customLong("idle-timeout"), help: "Seconds a silent connection stays open.")
        var idleTimeout = 15.0

        @Option(name: .customLong("max-connections"), help: "Open connections at most (others wait to be accepted).")
        var maxConnections = 128

        @Option(
            name: .customLong("shutdown-timeout"),
            help: "Seconds SIGTERM/SIGINT waits for requests in progress before the server stops anyway.")
        var shutdownTimeout = 10.0

        @Option(
            name: .customLong("api-key"),
            help: "Key that POST /v1/... requests must send (X-API-Key header); also GKNET_API_KEY.")
        var apiKey: String?

        @Option(
            name: .customLong("allow-origin"),
            help: "The one origin (https://site.example) whose pages may call the API (CORS); default none.")
        var allowOrigin: String?

        func validate() throws {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be in 1...65535") }
            // a ByteBuffer holds at most 4 GiB - 1
            guard (1...1024).contains(maxUploadMB) else { throw ValidationError("--max-upload-mb must be in 1...1024") }
            guard (1...1_000_000_000).contains(maximumPixels) else {
                throw ValidationError("--maximum-pixels must be in 1...10^9")
            }
            guard (1...256).contains(workers) else { throw ValidationError("--workers must be in 1...256") }
            if let threads, !(1...1024).contains(threads) { throw ValidationError("--threads must be in 1...1024") }
            guard (0...10_000).contains(queue) else { throw ValidationError("--queue must be in 0...10000") }
            for (name, value) in [
                ("--timeout", timeout), ("--read-timeout", readTimeout), ("--idle-timeout", idleTimeout),
                ("--shutdown-timeout", shutdownTimeout),
            ] where !(value > 0 && value <= 86_400) {
                throw ValidationError("\(name) must be in (0, 86400] seconds")
            }
            guard (1...100_000).contains(maxConnections) else {
                throw ValidationError("--max-connections must be in 1...100000")
            }
            if let allowOrigin,
                !(allowOrigin.hasPrefix("http://") || allowOrigin.hasPrefix("https://"))
                    || allowOrigin.utf8.contains(where: { $0 < 0x21 || $0 > 0x7E })
            {
                throw ValidationError("--allow-origin must be one origin such as https://site.example")
            }
            if let apiKey, apiKey.isEmpty || apiKey.utf8.contains(where: { $0 < 0x21 || $0 > 0x7E }) {
                throw ValidationError("--api-key must be printable ASCII without spaces")
            }
        }

        func run() async throws {
            var options = ServeOptions()
            options.host = host
            options.port = port
            options.modelPath = model
            options.maximumUploadMegabytes = maxUploadMB
            options.maximumPixels = maximumPixels
            options.workers = workers
            options.queue = queue
            options.timeoutSeconds = timeout
            options.readTimeoutSeconds = readTimeout
            options.idleTimeoutSeconds = idleTimeout
            options.maximumConnections = maxConnections
            options.shutdownTimeoutSeconds = shutdownTimeout
            options.apiKey =
                apiKey ?? RuntimeSettings.current.apiKey
            options.allowedOrigin = allowOrigin
            // the cores are shared out between the workers unless --threads or GKNET_THREADS says
            // otherwise; each worker thread takes this count when it starts (Threading.applyToCurrentThread)
            Threading.configure(
                threads: threads ?? RuntimeSettings.current.threads
                    ?? max(1, ProcessInfo.processInfo.activeProcessorCount / options.workers))
            var logger = Logger(label: "gknet.serve")
            logger.logLevel = .info
            let service = try HarmonizeService(options: options)
            let setup =
                "model: \(service.modelDescription); \(options.workers) worker(s) x \(Threading.count) thread(s), "
                + "queue \(options.queue), timeout \(Int(options.timeoutSeconds)) s"
            logger.info("\(setup)")
            if options.apiKey == nil && !Self.isLoopback(options.host) {
                let warning =
                    "listening on \(options.host) without an API key: anyone who can reach this port can use it "
                    + "(--api-key or GKNET_API_KEY)"
                logger.warning("\(warning)")
            }
            let (announcer, address) = (logger, "http://\(options.host):\(options.port)/")
            let watch = service.clients, readLimit = TimeAmount.seconds(options.readTimeoutSeconds)
            let http = HTTP1Channel.Configuration(
                additionalChannelHandlers: [RequestDeadlineHandler(readTimeout: readLimit, watch: watch)],
                idleTimeout: .seconds(options.idleTimeoutSeconds))
            let app = Application(
                router: service.router(),
                server: .http1(configuration: http),
                configuration: .init(
                    address: .hostname(options.host, port: options.port), serverName: "gknet",
                    availableConnectionsDelegate: MaximumAvailableConnections(
                        options.maximumConnections, logger: logger)),
                onServerRunning: { _ in announcer.info("serving on \(address)") },
                logger: logger)
            // the watchdog is last, so the first told of a shutdown; its run ending does not end the group
            let watchdog = ShutdownWatchdog(seconds: options.shutdownTimeoutSeconds, logger: logger)
            var group = ServiceGroupConfiguration(
                services: [.init(service: app), .init(service: watchdog, successTerminationBehavior: .ignore)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            group.maximumGracefulShutdownDuration = .seconds(options.shutdownTimeoutSeconds)
            group.maximumCancellationDuration = .seconds(1)
            try await ServiceGroup(configuration: group).run()
            service.close()
            logger.info("stopped")
        }

        static func isLoopback(_ host: String) -> Bool {
            host == "localhost" || host == "::1" || host.hasPrefix("127.")
        }
    }
}

extension TimeAmount {
    static func seconds(_ value: Double) -> TimeAmount { .nanoseconds(Int64(value * 1e9)) }
}

/// Ends the process when a graceful shutdown has not finished within its time (plus a second for
/// the service group's cancellation): a job that cannot be interrupted, or a client that keeps a
/// response from being written, never keeps the server running past `--shutdown-timeout`.
struct ShutdownWatchdog: Service {
    let seconds: Double
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let (limit, logger) = (seconds + 1.5, logger)
        let thread = Thread {
            Thread.sleep(forTimeInterval: limit)
            logger.error("shutdown took longer than --shutdown-timeout; exiting")
            exit(2)
        }
        thread.start()
    }
}
