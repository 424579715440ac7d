// oneDNN (2.6 C API) plumbing: one engine and stream for the process, a cache of primitives keyed
// by geometry, scratch buffers for blocked layouts and scratchpads, and operands that reorder
// between the caller's plain layout (NCHW / OIHW) and the layout a primitive chose.
//
// Every primitive uses a scratchpad we own (`dnnl_scratchpad_mode_user`), never the library's.
// NOTE: Debian's oneDNN is built with DNNL_ENABLE_CONCURRENT_EXEC=OFF, where the library-managed
// scratchpad is a thread-local buffer sized by the primitives the *calling thread* created; a
// cached primitive run on another thread wrote past that thread's buffer or through a null one
// (the parallel-test crashes, docs/robustness.md "Concurrent kernels"; OneDNNThreadTests).
// Every oneDNN call (creation and execution) runs under its context's lock, which guards the
// context's cache and scratch buffers; oneDNN parallelises inside each call. One context serves the
// process; single-threaded work side by side (model replicas) gets a context per thread
// (`OneDNN.current`).
#if canImport(CGKNetDNNL)
import CGKNetDNNL
import Foundation

/// Stops with a readable message when a oneDNN call made during execution fails.
@inline(__always)
func dnnlCheck(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
    if status != dnnl_success { fatalError("oneDNN: \(what()) failed (status \(status.rawValue))") }
}

/// An f32 memory descriptor of the given dimensions; `dnnl_format_tag_any` lets a primitive choose.
func dnnlMemoryDescriptor(_ dims: [Int], _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
    var descriptor = dnnl_memory_desc_t()
    let dims64 = dims.map { Int64($0) }
    dnnlCheck(
        dnnl_memory_desc_init_by_tag(&descriptor, Int32(dims.count), dims64, dnnl_f32, tag),
        "memory_desc_init_by_tag \(dims)")
    return descriptor
}

/// The process-wide oneDNN state. `OneDNN.context` is nil where no CPU engine can be created.
final class OneDNN: @unchecked Sendable {
    static let context: OneDNN? = OneDNN()

    /// The context the calling thread uses: the shared one, except inside
    /// `Threading.$perThreadLimit.withValue(...)` (single-threaded work side by side, such as the
    /// model replicas of a training step), where each thread gets a context of its own (its own
    /// lock, plans and scratch buffers), so that the replicas' convolutions do not queue for one lock.
    static var current: OneDNN? {
        guard Threading.perThreadLimit != nil, context != nil else { return context }
        let key = "gknet.onednn.context"
        if let own = Thread.current.threadDictionary[key] as? OneDNN { return own }
        let own = OneDNN()
        Thread.current.threadDictionary[key] = own
        return own
    }

    let engine: dnnl_engine_t
    let stream: dnnl_stream_t
    private let lock = NSLock()
    /// Primitive plans by key; a stored nil remembers that creation failed (the caller falls back).
    private var plans: [AnyHashable: AnyObject?] = [:]
    private var scratch: [OneDNNScratch: ScratchBuffer] = [:]

    private init?() {
        var engine: dnnl_engine_t?
        guard dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success, let engine else { return nil }
        var stream: dnnl_stream_t?
        guard dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream else {
            dnnl_engine_destroy(engine)
            return nil
        }
        self.engine = engine
        self.stream = stream
    }

    /// Runs `body` with exclusive use of the engine, the cache and the scratch buffers. OpenMP's
    /// thread count is a per-thread setting, so it is applied on whichever thread calls (and
    /// restored afterwards).
    func withLock<Result>(_ body: () -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        let previous = omp_get_max_threads()
        omp_set_num_threads(Int32(Threading.count))
        defer { omp_set_num_threads(previous) }
        return body()
    }

    /// The cached plan for `key`, created on first use (call under `withLock`). Plans are kept per
    /// thread count: a primitive sizes its scratchpad for the threads it was created with.
    func plan<Plan: AnyObject>(_ key: AnyHashable, create: () -> Plan?) -> Plan? {
        let key = PlanKey(key: key, threads: Threading.count)
        if let cached = plans[key] { return cached as? Plan }
        let plan = create()
        plans[key] = .some(plan)
        return plan
    }

    private struct PlanKey: Hashable {
        var key: AnyHashable
        var threads: Int
    }

    /// A scratch buffer of at least `bytes` bytes for one role (call under `withLock`).
    func scratchBuffer(_ role: OneDNNScratch, bytes: Int) -> UnsafeMutableRawPointer {
        let buffer = scratch[role] ?? ScratchBuffer()
        scratch[role] = buffer
        return buffer.reserve(bytes)
    }

    /// Executes a primitive with its arguments (plus its scratchpad) and waits for it.
    func execute(
        _ primitive: dnnl_primitive_t, _ arguments: [(Int32, dnnl_memory_t)], _ what: @autoclosure () -> String
    ) {
        var execArguments = arguments.map { dnnl_exec_arg_t(arg: $0.0, memory: $0.1) }
        var scratchpad: dnnl_memory_t?
        defer { if let scratchpad { dnnl_memory_destroy(scratchpad) } }
        if let descriptor = scratchpadDescriptor(of: primitive) {
            var descriptor = descriptor
            let buffer = scratchBuffer(.scratchpad, bytes: dnnl_memory_desc_get_size(&descriptor))
            dnnlCheck(
                dnnl_memory_create(&scratchpad, &descriptor, engine, buffer), "memory_create (scratchpad) for \(what())"
            )
            execArguments.append(dnnl_exec_arg_t(arg: DNNL_ARG_SCRATCHPAD, memory: scratchpad))
        }
        dnnlCheck(dnnl_primitive_execute(primitive, stream, Int32(execArguments.count), &execArguments), what())
        dnnlCheck(dnnl_stream_wait(stream), "stream_wait after \(what())")
    }

    /// The scratchpad a primitive asks for, or nil when it needs none.
    func scratchpadDescriptor(of primitive: dnnl_primitive_t) -> dnnl_memory_desc_t? {
        var descriptor: const_dnnl_primitive_desc_t?
        dnnlCheck(dnnl_primitive_get_primitive_desc(primitive, &descriptor), "primitive_get_primitive_desc")
        guard let memory = dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0) else { return nil }
        var scratchpad = memory.pointee
        return dnnl_memory_desc_get_size(&scratchpad) > 0 ? scratchpad : nil
    }

    /// Attributes asking for a caller-provided scratchpad (see the file header), plus `configure`.
    private func makeAttributes(_ configure: (dnnl_primitive_attr_t) -> Bool = { _ in true }) -> dnnl_primitive_attr_t?
    {
        var attributes: dnnl_primitive_attr_t?
        guard dnnl_primitive_attr_create(&attributes) == dnnl_success, let attributes else { return nil }
        guard dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user) == dnnl_success,
            configure(attributes)
        else {
            dnnl_primitive_attr_destroy(attributes)
            return nil
        }
        return attributes
    }

    /// Creates a primitive descriptor from an op descriptor (user scratchpad); nil if oneDNN has no
    /// implementation for it.
    func makePrimitiveDescriptor(_ opDescriptor: UnsafeRawPointer, hint: dnnl_primitive_desc_t? = nil)
        -> dnnl_primitive_desc_t?
    {
        guard let attributes = makeAttributes() else { return nil }
        defer { dnnl_primitive_attr_destroy(attributes) }
        var descriptor: dnnl_primitive_desc_t?
        guard dnnl_primitive_desc_create(&descriptor, opDescriptor, attributes, engine, hint) == dnnl_success else {
            return nil
        }
        return descriptor
    }

    /// A reorder primitive from one layout to another, optionally accumulating (`to += from`).
    func makeReorder(from source: dnnl_memory_desc_t, to destination: dnnl_memory_desc_t, accumulate: Bool)
        -> dnnl_primitive_t?
    {
        var source = source, destination = destination
        var postOps: dnnl_post_ops_t?
        defer { if let postOps { dnnl_post_ops_destroy(postOps) } }
        let attributes = makeAttributes { attributes in
            guard accumulate else { return true }
            return dnnl_post_ops_create(&postOps) == dnnl_success
                && dnnl_post_ops_append_sum(postOps, 1) == dnnl_success
                && dnnl_primitive_attr_set_post_ops(attributes, postOps) == dnnl_success
        }
        guard let attributes else { return nil }
        defer { dnnl_primitive_attr_destroy(attributes) }
        var descriptor: dnnl_primitive_desc_t?
        guard
            dnnl_reorder_primitive_desc_create(&descriptor, &source, engine, &destination, engine, attributes)
                == dnnl_success,
            let descriptor
        else { return nil }
        defer { dnnl_primitive_desc_destroy(descriptor) }
        return makePrimitive(descriptor)
    }

    func makePrimitive(_ descriptor: dnnl_primitive_desc_t) -> dnnl_primitive_t? {
        var primitive: dnnl_primitive_t?
        guard dnnl_primitive_create(&primitive, descriptor) == dnnl_success else { return nil }
        return primitive
    }

    /// A memory object without a buffer; `dnnl_memory_set_data_handle` binds one per call.
    func makeMemory(_ descriptor: dnnl_memory_desc_t) -> dnnl_memory_t? {
        var descriptor = descriptor
        var memory: dnnl_memory_t?
        guard dnnl_memory_create(&memory, &descriptor, engine, nil) == dnnl_success else { return nil }
        return memory
    }
}

/// The roles scratch buffers are kept for (one buffer each, grown to the largest use).
enum OneDNNScratch: Hashable {
    case source, weights, destination, bias
    /// The scratchpad of the primitive being executed (one execution at a time, under the lock).
    case scratchpad
}

/// A 64-byte aligned buffer that only grows.
final class ScratchBuffer {
    private var pointer: UnsafeMutableRawPointer?
    private var capacity = 0

    func reserve(_ bytes: Int) -> UnsafeMutableRawPointer {
        if let pointer, capacity >= bytes { return pointer }
        pointer?.deallocate()
        capacity = max(bytes, 64)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        pointer = fresh
        return fresh
    }

    deinit { pointer?.deallocate() }
}

/// One argument of a primitive: the caller's plain layout and the primitive's layout, with the
/// reorders between them when they differ.
final class OneDNNOperand {
    /// Memory over the caller's buffer (plain layout).
    let user: dnnl_memory_t
    /// Memory over a scratch buffer in the primitive's layout (used when layouts differ, or to
    /// accumulate an output).
    let inner: dnnl_memory_t
    let innerDescriptor: dnnl_memory_desc_t
    let innerBytes: Int
    let needsReorder: Bool
    /// user -> inner for inputs; inner -> user for outputs.
    private let reorder: dnnl_primitive_t?
    /// inner -> user as `user += inner` (outputs only).
    private let accumulatingReorder: dnnl_primitive_t?

    init?(
        context: OneDNN, user userDescriptor: dnnl_memory_desc_t, inner innerDescriptor: dnnl_memory_desc_t,
        isOutput: Bool
    ) {
        var a = userDescriptor, b = innerDescriptor
        needsReorder = dnnl_memory_desc_equal(&a, &b) == 0
        self.innerDescriptor = innerDescriptor
        innerBytes = dnnl_memory_desc_get_size(&b)
        guard let user = context.makeMemory(userDescriptor), let inner = context.makeMemory(innerDescriptor) else {
            return nil
        }
        self.user = user
        self.inner = inner
        if !needsReorder {
            reorder = nil
            accumulatingReorder = nil
        } else if isOutput {
            reorder = context.makeReorder(from: innerDescriptor, to: userDescriptor, accumulate: false)
            accumulatingReorder = context.makeReorder(from: innerDescriptor, to: userDescriptor, accumulate: true)
            if reorder == nil || accumulatingReorder == nil { return nil }
        } else {
            reorder = context.makeReorder(from: userDescriptor, to: innerDescriptor, accumulate: false)
            accumulatingReorder = nil
            if reorder == nil { return nil }
        }
    }

    /// Binds a read-only caller buffer and returns the memory the primitive should read
    /// (reordered into the `role` scratch buffer when layouts differ).
    func bindInput(_ pointer: UnsafePointer<Float>, context: OneDNN, role: OneDNNScratch) -> dnnl_memory_t {
        dnnlCheck(dnnl_memory_set_data_handle(user, UnsafeMutableRawPointer(mutating: pointer)), "set_data_handle")
        guard let reorder else { return user }
        dnnlCheck(dnnl_memory_set_data_handle(inner, context.scratchBuffer(role, bytes: innerBytes)), "set_data_handle")
        context.execute(reorder, [(DNNL_ARG_FROM, user), (DNNL_ARG_TO, inner)], "reorder to primitive layout")
        return inner
    }

    /// Binds a caller output buffer and returns the memory the primitive should write: the
    /// caller's buffer itself, or scratch (layouts differ, or `accumulate`) that `finishOutput`
    /// then moves into the caller's buffer.
    func bindOutput(_ pointer: UnsafeMutablePointer<Float>, context: OneDNN, role: OneDNNScratch, accumulate: Bool)
        -> dnnl_memory_t
    {
        dnnlCheck(dnnl_memory_set_data_handle(user, pointer), "set_data_handle")
        if !needsReorder && !accumulate { return user }
        dnnlCheck(dnnl_memory_set_data_handle(inner, context.scratchBuffer(role, bytes: innerBytes)), "set_data_handle")
        return inner
    }

    /// Completes `bindOutput`: caller buffer (= or +=) what the primitive wrote (`count` floats).
    func finishOutput(_ pointer: UnsafeMutablePointer<Float>, count: Int, context: OneDNN, accumulate: Bool) {
        if let reorder {
            let primitive = accumulate ? accumulatingReorder! : reorder
            context.execute(primitive, [(DNNL_ARG_FROM, inner), (DNNL_ARG_TO, user)], "reorder to caller layout")
        } else if accumulate {
            var handle: UnsafeMutableRawPointer?
            dnnlCheck(dnnl_memory_get_data_handle(inner, &handle), "get_data_handle")
            let source = UnsafePointer(handle!.assumingMemoryBound(to: Float.self))
            parallelChunks(count, minimumPerThread: 1 << 16) { range in
                for i in range { pointer[i] += source[i] }
            }
        }
    }

    /// Whether another operand's primitive layout is this one's.
    func hasSameInnerLayout(as other: OneDNNOperand) -> Bool {
        var a = innerDescriptor, b = other.innerDescriptor
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    deinit {
        dnnl_memory_destroy(inner)
        dnnl_memory_destroy(user)
        if let reorder { dnnl_primitive_destroy(reorder) }
        if let accumulatingReorder { dnnl_primitive_destroy(accumulatingReorder) }
    }
}
#endif
