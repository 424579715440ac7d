// Elementwise binary arithmetic with NumPy/PyTorch broadcasting: add, sub, mul, div; and scalars.
// Forward: out[i] = a[bi(i)] op b[bj(i)]; backward: each input's gradient is reduced back to its
// own shape by `reduceToShape` (the one place broadcasting pullbacks are handled).

/// Applies `op` elementwise over the broadcast of `a` and `b` (Kernels/BroadcastKernels.swift).
/// - Returns: the broadcast shape and the values.
@inline(__always)
func broadcastBinary(_ a: Tensor, _ b: Tensor, _ opName: String, _ op: (Float, Float) -> Float) -> ([Int], [Float]) {
    let shape = a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
    let plan = BroadcastPlan(a: a.shape, b: b.shape, output: shape)
    let count = shape.elementCount
    let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                if count > 0 {
                    broadcastForward(
                        output: buffer.baseAddress!, a: pa.baseAddress!, b: pb.baseAddress!, plan: plan, op)
                }
            }
        }
        initialized = count
    }
    return (shape, values)
}

/// Sums a gradient of shape `broadcast` back to `shape` (the adjoint of broadcasting).
public func reduceToShape(_ gradient: [Float], from broadcast: [Int], to shape: [Int]) -> [Float] {
    if broadcast == shape { return gradient }
    var out = [Float](repeating: 0, count: shape.elementCount)
    guard !gradient.isEmpty else { return out }
    let plan = BroadcastPlan(a: shape, b: broadcast, output: broadcast)
    out.withUnsafeMutableBufferPointer { target in
        gradient.withUnsafeBufferPointer { source in
            broadcastReduce(target: target.baseAddress!, gradient: source.baseAddress!, plan: plan)
        }
    }
    return out
}

extension Tensor {
    /// `a + b` with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "add") }
        let (shape, values) = broadcastBinary(a, b, "add", +)
        return Tensor(shape: shape, data: values).recorded("add", inputs: [a, b]) { dOut in
            [
                a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
                b.requiresGrad ? reduceToShape(dOut, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a - b` with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "subtract") }
        let (shape, values) = broadcastBinary(a, b, "sub", -)
        return Tensor(shape: shape, data: values).recorded("sub", inputs: [a, b]) { dOut in
            [
                a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
                b.requiresGrad ? reduceToShape(mapElements(dOut) { -$0 }, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a * b` elementwise with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "multiply") }
        let (shape, values) = broadcastBinary(a, b, "mul", *)
        return Tensor(shape: shape, data: values).recorded("mul", inputs: [a, b]) { dOut in
            // in the forward pass: out = a * b, so d a = dOut * b and d b = dOut * a
            let dOutTensor = Tensor(shape: shape, data: dOut)
            return [
                a.requiresGrad
                    ? reduceToShape(broadcastBinary(dOutTensor, b, "mul", *).1, from: shape, to: a.shape) : nil,
                b.requiresGrad
                    ? reduceToShape(broadcastBinary(dOutTensor, a, "mul", *).1, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a / b` elementwise with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "divide") }
        let (shape, values) = broadcastBinary(a, b, "div", /)
        return Tensor(shape: shape, data: values).recorded("div", inputs: [a, b]) { dOut in
            // out = a / b: d a = dOut / b; d b = -dOut * a / b^2 = -dOut * out / b
            let dOutTensor = Tensor(shape: shape, data: dOut)
            var db: [Float]? = nil
            if b.requiresGrad {
                let outTimesDOut = broadcastBinary(dOutTensor, Tensor(shape: shape, data: values), "mul", *)
                let quotient = broadcastBinary(Tensor(shape: shape, data: outTimesDOut.1), b, "div", /).1
                db = reduceToShape(mapElements(quotient) { -$0 }, from: shape, to: b.shape)
            }
            return [
                a.requiresGrad
                    ? reduceToShape(broadcastBinary(dOutTensor, b, "div", /).1, from: shape, to: a.shape) : nil,
                db,
            ]
        }
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.addingScalar(s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.addingScalar(s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.addingScalar(-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { (-a).addingScalar(s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.scaled(by: 1 / s) }

    /// `-a`.
    public static prefix func - (a: Tensor) -> Tensor { a.scaled(by: -1) }

    /// `a + s` for a scalar `s`.
    public func addingScalar(_ s: Float) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "addScalar") }
        return Tensor(shape: shape, data: mapElements(data) { $0 + s }).recorded("addScalar", inputs: [self]) { dOut in
            [dOut]
        }
    }

    /// `a * s` for a scalar `s`.
    public func scaled(by s: Float) -> Tensor {
        let profiled = OpProfiler.begin()
        defer { OpProfiler.end(profiled, "scale") }
        return Tensor(shape: shape, data: mapElements(data) { $0 * s }).recorded("scale", inputs: [self]) { dOut in
            [mapElements(dOut) { $0 * s }]
        }
    }
}

/// `values.map(transform)` as a parallel, vectorisable loop into a fresh array.
@inline(__always)
func mapElements(_ values: [Float], _ transform: (Float) -> Float) -> [Float] {
    let count = values.count
    return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        values.withUnsafeBufferPointer { source in
            if let out = buffer.baseAddress, let input = source.baseAddress {
                parallelChunks(count, minimumPerThread: cheapElementwiseGrain) { range in
                    for i in range { out[i] = transform(input[i]) }
                }
            }
        }
        initialized = count
    }
}
