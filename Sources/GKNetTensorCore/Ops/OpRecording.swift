// The one way an op runs (`Tensor.op`): timed by the op profiler, its cost reported to an active
// cost tracer, its output made from what its forward kernel writes, and its pullback recorded on
// the tape. Kernels get raw buffers from `borrow` / `gradients` instead of nested
// `withUnsafeBufferPointer` calls. Everything here is inlined: no copy or allocation beyond the
// output and gradient arrays the op returns.

extension Tensor {
    /// Runs one differentiable op and returns its output.
    ///
    ///     return Tensor.op("relu", inputs: [x], shape: x.shape) {
    ///         newBuffer(x.count) { out in borrow(x.data) { reluForward(output: out, input: $0) } }
    ///     } backward: { dOut in
    ///         [gradient(x.count) { dx in borrow(dOut, y) { reluBackward(dInput: dx, dOutput: $0, output: $1) } }]
    ///     }
    ///
    /// - Parameters:
    ///   - name: the op's name on the tape (and in the profiler unless `profiledAs` names it).
    ///   - profiledAs: the op profiler's row (only evaluated while profiling), e.g. with the shapes.
    ///   - inputs: the tensors the pullback returns gradients for, in order.
    ///   - shape: the output's shape.
    ///   - macs: multiply-accumulates of the forward, reported to an active `CostTracer`.
    ///   - parameter: the weight the op applies, if any (a cost trace charges the op to its module).
    ///   - forward: the output's values (`shape.elementCount` of them).
    ///   - backward: one gradient per input from the output's (nil where none is needed).
    @inline(__always)
    static func op(
        _ name: String, profiledAs profileName: @autoclosure () -> String? = nil, inputs: [Tensor], shape: [Int],
        macs: @autoclosure () -> Int = 0, parameter: Tensor? = nil, forward: () -> [Float],
        backward: @escaping Pullback
    ) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, profileName() ?? name) }
        if let tracer = CostTracer.active { tracer.record(name, macs: macs(), parameter: parameter) }
        return Tensor(shape: shape, data: forward()).recorded(name, inputs: inputs, pullback: backward)
    }

    /// `op` for a forward that also leaves something for its backward (saved statistics, argmax
    /// indices): `forward` returns (values, saved) and `backward` receives `saved`.
    @inline(__always)
    static func op<Saved>(
        _ name: String, profiledAs profileName: @autoclosure () -> String? = nil, inputs: [Tensor], shape: [Int],
        macs: @autoclosure () -> Int = 0, parameter: Tensor? = nil, forward: () -> ([Float], Saved),
        backward: @escaping (_ dOutput: [Float], _ saved: Saved) -> [[Float]?]
    ) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, profileName() ?? name) }
        if let tracer = CostTracer.active { tracer.record(name, macs: macs(), parameter: parameter) }
        let (values, saved) = forward()
        let output = Tensor(shape: shape, data: values)
        // Checked first so that inference builds no closure around `saved`.
        guard Tensor.isRecording(inputs) else { return output }
        return output.recorded(name, inputs: inputs) { backward($0, saved) }
    }
}

// MARK: - Output and gradient buffers

/// A fresh array of `count` elements filled by `kernel`.
///
/// - Parameter zeroed: start from zeros, for kernels that accumulate or skip elements; otherwise
///   the memory is uninitialised and `kernel` must write every element.
/// `kernel` is not called when `count` is 0.
@inline(__always)
func newBuffer<Element: Numeric>(
    _ count: Int, zeroed: Bool = false, _ kernel: (UnsafeMutableBufferPointer<Element>) -> Void
) -> [Element] {
    guard count > 0 else { return [] }
    if zeroed {
        var values = [Element](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { kernel($0) }
        return values
    }
    return [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
        kernel(buffer)
        initialized = count
    }
}

/// `newBuffer` for a gradient: nil when the input does not need one (`needed` false), zeros by
/// default (gradient kernels add into their buffers unless they say they overwrite them).
@inline(__always)
func gradient(
    _ count: Int, if needed: Bool = true, zeroed: Bool = true, _ kernel: (UnsafeMutableBufferPointer<Float>) -> Void
) -> [Float]? {
    guard needed else { return nil }
    guard count > 0 else { return [] }
    return newBuffer(count, zeroed: zeroed, kernel)
}

/// Gradient buffers for the inputs that need one (nil for the others), filled by one kernel call
/// that receives nil for the gradients not wanted; zeros unless `zeroed` is false (the kernel
/// overwrites every element of the gradients it writes).
/// - Parameter a: the input's element count and whether it needs a gradient; likewise `b`.
@inline(__always)
func gradients(
    _ a: (count: Int, needed: Bool), _ b: (count: Int, needed: Bool), zeroed: Bool = true,
    _ kernel: (UnsafeMutableBufferPointer<Float>?, UnsafeMutableBufferPointer<Float>?) -> Void
) -> ([Float]?, [Float]?) {
    var (da, db) = (gradientStorage(a, zeroed), gradientStorage(b, zeroed))
    borrowMutable(&da, &db, kernel)
    return (da, db)
}

/// `gradients` for three inputs (an input, a weight and a bias).
@inline(__always)
func gradients(
    _ a: (count: Int, needed: Bool), _ b: (count: Int, needed: Bool), _ c: (count: Int, needed: Bool),
    zeroed: Bool = true,
    _ kernel: (
        UnsafeMutableBufferPointer<Float>?, UnsafeMutableBufferPointer<Float>?, UnsafeMutableBufferPointer<Float>?
    ) -> Void
) -> ([Float]?, [Float]?, [Float]?) {
    var (da, db, dc) = (gradientStorage(a, zeroed), gradientStorage(b, zeroed), gradientStorage(c, zeroed))
    borrowMutable(&da, &db, &dc, kernel)
    return (da, db, dc)
}

/// An array of `spec.count` zeros or uninitialised floats, or nil when not needed.
@inline(__always)
func gradientStorage(_ spec: (count: Int, needed: Bool), _ zeroed: Bool) -> [Float]? {
    guard spec.needed else { return nil }
    if zeroed { return [Float](repeating: 0, count: spec.count) }
    return [Float](unsafeUninitializedCapacity: spec.count) { _, initialized in initialized = spec.count }
}

// MARK: - Borrowing arrays as kernel buffers

/// An array a kernel reads through a buffer pointer; an absent one (`Optional.none`) reads as nil.
protocol KernelOperand {
    associatedtype Buffer
    func withKernelBuffer<R>(_ body: (Buffer) -> R) -> R
}

extension Array: KernelOperand {
    @inline(__always)
    func withKernelBuffer<R>(_ body: (UnsafeBufferPointer<Element>) -> R) -> R {
        withUnsafeBufferPointer(body)
    }
}

extension Optional: KernelOperand where Wrapped: KernelOperand {
    @inline(__always)
    func withKernelBuffer<R>(_ body: (Wrapped.Buffer?) -> R) -> R {
        switch self {
        case .none: body(nil)
        case .some(let wrapped): wrapped.withKernelBuffer { body($0) }
        }
    }
}

/// An array a kernel writes through a buffer pointer; an absent one reads as nil.
protocol MutableKernelOperand {
    associatedtype MutableBuffer
    mutating func withMutableKernelBuffer<R>(_ body: (MutableBuffer) -> R) -> R
}

extension Array: MutableKernelOperand {
    @inline(__always)
    mutating func withMutableKernelBuffer<R>(_ body: (UnsafeMutableBufferPointer<Element>) -> R) -> R {
        withUnsafeMutableBufferPointer { body($0) }
    }
}

extension Optional: MutableKernelOperand where Wrapped: MutableKernelOperand {
    @inline(__always)
    mutating func withMutableKernelBuffer<R>(_ body: (Wrapped.MutableBuffer?) -> R) -> R {
        if self == nil { return body(nil) }
        return self!.withMutableKernelBuffer { body($0) }
    }
}

/// Calls `body` with buffers over the arrays (nil for an absent optional array), valid only inside it.
@inline(__always)
func borrow<A: KernelOperand, R>(_ a: A, _ body: (A.Buffer) -> R) -> R {
    a.withKernelBuffer(body)
}

@inline(__always)
func borrow<A: KernelOperand, B: KernelOperand, R>(_ a: A, _ b: B, _ body: (A.Buffer, B.Buffer) -> R) -> R {
    a.withKernelBuffer { pa in b.withKernelBuffer { body(pa, $0) } }
}

@inline(__always)
func borrow<A: KernelOperand, B: KernelOperand, C: KernelOperand, R>(
    _ a: A, _ b: B, _ c: C, _ body: (A.Buffer, B.Buffer, C.Buffer) -> R
) -> R {
    borrow(a, b) { pa, pb in c.withKernelBuffer { body(pa, pb, $0) } }
}

@inline(__always)
func borrow<A: KernelOperand, B: KernelOperand, C: KernelOperand, D: KernelOperand, R>(
    _ a: A, _ b: B, _ c: C, _ d: D, _ body: (A.Buffer, B.Buffer, C.Buffer, D.Buffer) -> R
) -> R {
    borrow(a, b, c) { pa, pb, pc in d.withKernelBuffer { body(pa, pb, pc, $0) } }
}

@inline(__always)
func borrow<A: KernelOperand, B: KernelOperand, C: KernelOperand, D: KernelOperand, E: KernelOperand, R>(
    _ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ body: (A.Buffer, B.Buffer, C.Buffer, D.Buffer, E.Buffer) -> R
) -> R {
    borrow(a, b, c, d) { pa, pb, pc, pd in e.withKernelBuffer { body(pa, pb, pc, pd, $0) } }
}

@inline(__always)
func borrow<
    A: KernelOperand, B: KernelOperand, C: KernelOperand, D: KernelOperand, E: KernelOperand, F: KernelOperand, R
>(
    _ a: A, _ b: B, _ c: C, _ d: D, _ e: E, _ f: F,
    _ body: (A.Buffer, B.Buffer, C.Buffer, D.Buffer, E.Buffer, F.Buffer) -> R
) -> R {
    borrow(a, b, c, d, e) { pa, pb, pc, pd, pe in f.withKernelBuffer { body(pa, pb, pc, pd, pe, $0) } }
}

/// Calls `body` with mutable buffers over the arrays (nil for an absent optional array).
@inline(__always)
func borrowMutable<A: MutableKernelOperand, R>(_ a: inout A, _ body: (A.MutableBuffer) -> R) -> R {
    a.withMutableKernelBuffer(body)
}

@inline(__always)
func borrowMutable<A: MutableKernelOperand, B: MutableKernelOperand, R>(
    _ a: inout A, _ b: inout B, _ body: (A.MutableBuffer, B.MutableBuffer) -> R
) -> R {
    a.withMutableKernelBuffer { pa in b.withMutableKernelBuffer { body(pa, $0) } }
}

@inline(__always)
func borrowMutable<A: MutableKernelOperand, B: MutableKernelOperand, C: MutableKernelOperand, R>(
    _ a: inout A, _ b: inout B, _ c: inout C, _ body: (A.MutableBuffer, B.MutableBuffer, C.MutableBuffer) -> R
) -> R {
    borrowMutable(&a, &b) { pa, pb in c.withMutableKernelBuffer { body(pa, pb, $0) } }
}
