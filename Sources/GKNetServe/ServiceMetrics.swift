// The metrics of `gknet serve` at GET /metrics (Prometheus text format, swift-prometheus):
// requests by route and status, request latency, queue length, busy workers, images harmonized,
// requests refused for a full queue and requests past their deadline.
import Foundation
import GKNetInference
import HTTPTypes
import Hummingbird
import Prometheus

public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let queueLength: Gauge
    let busyWorkers: Gauge
    let imagesHarmonized: Counter
    let rejected: Counter
    let timedOut: Counter
    let cancelled: Counter
    let latency: DurationHistogram

    public init() {
        queueLength = registry.makeGauge(name: "gknet_queue_length", help: "Requests waiting for a worker")
        busyWorkers = registry.makeGauge(name: "gknet_busy_workers", help: "Workers running a harmonization")
        imagesHarmonized = registry.makeCounter(name: "gknet_images_harmonized_total", help: "Images harmonized")
        rejected = registry.makeCounter(
            name: "gknet_queue_full_total", help: "Requests refused with 503 because the queue was full")
        timedOut = registry.makeCounter(
            name: "gknet_timeouts_total", help: "Requests answered 504 because their deadline passed")
        cancelled = registry.makeCounter(
            name: "gknet_jobs_cancelled_total",
            help: "Jobs stopped between stages because their client went away or got its 504")
        latency = registry.makeDurationHistogram(
            name: "gknet_request_duration_seconds",
            buckets: [
                .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            ],
            help: "Time from request to response")
    }

    /// Counts one finished request.
    func record(route: String, status: HTTPResponse.Status, duration: Duration) {
        registry.makeCounter(
            name: "gknet_http_requests_total", labels: [("route", route), ("status", String(status.code))],
            help: "HTTP requests by route and status"
        ).increment()
        latency.record(duration)
    }
}

/// Records every request's status and latency (errors included: it runs outside the error mapping).
struct MetricsRecorder<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics
    let pool: WorkerPool<Harmonizer>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let route = serviceRoutes.contains(request.uri.path) ? request.uri.path : "other"
        do {
            let response = try await next(request, context)
            metrics.record(route: route, status: response.status, duration: ContinuousClock.now - start)
            return response
        } catch let error as any HTTPResponseError {
            metrics.record(route: route, status: error.status, duration: ContinuousClock.now - start)
            throw error
        } catch {
            metrics.record(route: route, status: .internalServerError, duration: ContinuousClock.now - start)
            throw error
        }
    }
}

/// The routes counted by name in the metrics (anything else is "other", so that random paths
/// cannot create unbounded label values).
let serviceRoutes: Set<String> = [
    "/", "/openapi.yaml", "/healthz", "/readyz", "/metrics", "/v1/harmonize", "/v1/compose",
]
