// Buffers over optional arrays, shared by every op: a bias may be absent, and a backward pass
// computes gradients only for the inputs that need them. nil goes through to the kernel as "none".

/// Calls `body` with a buffer over `values`, or with nil when there are none.
@inline(__always)
func withOptionalBuffer<R>(_ values: [Float]?, _ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0) }
}

/// Calls `body` with a mutable buffer over `values`, or with nil when there are none (a gradient
/// that is not wanted).
@inline(__always)
func withOptionalMutableBuffer<R>(_ values: inout [Float]?, _ body: (UnsafeMutableBufferPointer<Float>?) -> R) -> R {
    if values == nil { return body(nil) }
    return values!.withUnsafeMutableBufferPointer { body($0) }
}

/// `withOptionalMutableBuffer` over three arrays at once (an op's input, weight and bias gradients).
@inline(__always)
func withOptionalMutableBuffers<R>(
    _ a: inout [Float]?, _ b: inout [Float]?, _ c: inout [Float]?,
    _ body: (UnsafeMutableBufferPointer<Float>?, UnsafeMutableBufferPointer<Float>?, UnsafeMutableBufferPointer<Float>?)
        -> R
) -> R {
    withOptionalMutableBuffer(&a) { pa in
        withOptionalMutableBuffer(&b) { pb in withOptionalMutableBuffer(&c) { pc in body(pa, pb, pc) } }
    }
}
