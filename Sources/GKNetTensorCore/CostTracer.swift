// Counting a computation's cost by running it: while `CostTracer.trace` runs a forward pass, every
// op that does multiply-accumulates (convolutions, transposed convolutions, matmuls, linears,
// attention, per-pixel kernels, bicubic resizes) reports them from its geometry, with the weight it
// applies and the modules running it (`CostTracer.scope`). ModelInspection groups the entries by
// module path. Off by default: then an op pays one task-local read.
import Foundation

/// Collects (op, MACs, owner) entries from the ops run inside `trace`.
public final class CostTracer: @unchecked Sendable {
    /// One op's cost.
    public struct Entry: Sendable {
        /// The op's tape name ("conv2d", "matmul", "applyPixelKernels", ...).
        public var op: String
        /// Multiply-accumulates of its forward.
        public var macs: Int
        /// The weight it applied (a parameter of some module), if any.
        public var parameter: ObjectIdentifier?
        /// The objects (modules) that declared a `scope` around it, outermost first.
        public var scopes: [ObjectIdentifier]
    }

    /// The tracer of the running `trace`, if any.
    @TaskLocal static var active: CostTracer?
    /// The scopes the running code is in, outermost first.
    @TaskLocal static var scopes: [ObjectIdentifier] = []

    private let lock = NSLock()
    private var recorded: [Entry] = []

    private init() {}

    /// Runs `body` and returns its result with the cost of every op it ran, in order.
    public static func trace<Result>(_ body: () throws -> Result) rethrows -> (result: Result, entries: [Entry]) {
        let tracer = CostTracer()
        let result = try $active.withValue(tracer, operation: body)
        tracer.lock.lock()
        defer { tracer.lock.unlock() }
        return (result, tracer.recorded)
    }

    /// Runs `body` as work of `owner` (a module): ops in it that apply no weight of their own (a
    /// matmul of activations, attention, per-pixel kernels) are charged to the innermost scope.
    /// Costs nothing beyond one task-local read when no trace is running.
    public static func scope<Result>(_ owner: AnyObject, _ body: () throws -> Result) rethrows -> Result {
        guard active != nil else { return try body() }
        return try $scopes.withValue(scopes + [ObjectIdentifier(owner)], operation: body)
    }

    /// Adds an op's entry (ops call it through `Tensor.op`).
    func record(_ op: String, macs: Int, parameter: Tensor?) {
        guard macs > 0 else { return }
        let entry = Entry(op: op, macs: macs, parameter: parameter.map(ObjectIdentifier.init), scopes: Self.scopes)
        lock.lock()
        defer { lock.unlock() }
        recorded.append(entry)
    }
}
