// `gknet serve`: the harmonization web service and page (GKNetServe) on Hummingbird.
import ArgumentParser
import Foundation
import GKNetServe
import Hummingbird
import Logging
import TensorCore

extension GKNetCommand {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve the harmonization API and a page for the browser.",
            discussion: """
                Open http://HOST:PORT/ in a browser, or call POST /v1/harmonize and POST /v1/compose \
                (the API is described at /openapi.yaml). SIGINT or SIGTERM stops the server gracefully: \
                requests in progress finish, no new ones start.
                """)

        @Option(help: "Address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every interface).")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on.")
        var port = 8080

        @Option(help: "A checkpoint from gknet train or gknet export (default: the bundled model).")
        var model: String?

        @Option(name: .customLong("max-upload-mb"), help: "Largest request body in MiB (413 above).")
        var maxUploadMB = 32

        @Option(name: .customLong("maximum-pixels"), help: "Largest image in pixels (413 above).")
        var maximumPixels = 40_000_000

        @Option(help: "Harmonizations run at once (default: one per 2 cores); each has its own model copy.")
        var workers: Int?

        @Option(help: "Requests that may wait for a worker before the server answers 503.")
        var queue = 8

        @Option(help: "Seconds a request may wait and run before the server answers 504.")
        var timeout = 60.0

        func validate() throws {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be in 1...65535") }
            guard (1...4096).contains(maxUploadMB) else { throw ValidationError("--max-upload-mb must be in 1...4096") }
            guard (1...1_000_000_000).contains(maximumPixels) else {
                throw ValidationError("--maximum-pixels must be in 1...10^9")
            }
            if let workers, !(1...256).contains(workers) { throw ValidationError("--workers must be in 1...256") }
            guard (0...10_000).contains(queue) else { throw ValidationError("--queue must be in 0...10000") }
            guard timeout > 0 && timeout <= 86_400 else {
                throw ValidationError("--timeout must be in (0, 86400] seconds")
            }
        }

        func run() async throws {
            var options = ServeOptions()
            options.host = host
            options.port = port
            options.modelPath = model
            options.maximumUploadMegabytes = maxUploadMB
            options.maximumPixels = maximumPixels
            if let workers { options.workers = workers }
            options.queue = queue
            options.timeoutSeconds = timeout
            // the cores are shared out between the workers (unless GKNET_THREADS says otherwise);
            // at start-up, before any kernel runs
            if RuntimeSettings.current.threads == nil {
                Threading.configure(threads: max(1, ProcessInfo.processInfo.activeProcessorCount / options.workers))
            }
            var logger = Logger(label: "gknet.serve")
            logger.logLevel = .info
            let service = try HarmonizationService(options: options)
            let setup =
                "model: \(service.modelDescription); \(options.workers) worker(s) x \(Threading.count) thread(s), "
                + "queue \(options.queue), timeout \(Int(options.timeoutSeconds)) s"
            logger.info("\(setup)")
            let (announcer, address) = (logger, "http://\(options.host):\(options.port)/")
            let app = Application(
                router: service.router(),
                configuration: .init(address: .hostname(options.host, port: options.port), serverName: "gknet"),
                onServerRunning: { _ in announcer.info("serving on \(address)") },
                logger: logger)
            try await app.runService()
            service.close()
            logger.info("stopped")
        }
    }
}
