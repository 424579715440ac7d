// Elementwise binary arithmetic with NumPy/PyTorch broadcasting: add, sub, mul, div; and scalars.
// Forward: out[i] = a[bi(i)] op b[bj(i)]; backward: each input's gradient is reduced back to its
// own shape by `reduceToShape` (the one place broadcasting pullbacks are handled).

/// Applies `op` elementwise over the broadcast of `a` and `b` (Kernels/BroadcastKernels.swift).
/// - Returns: the broadcast shape and the values.
@inline(__always)
func broadcastBinary(_ a: Tensor, _ b: Tensor, _ opName: String, _ op: (Float, Float) -> Float) -> ([Int], [Float]) {
    let shape = broadcastShape(a, b)
    let plan = BroadcastPlan(a: a.shape, b: b.shape, output: shape)
    let values = newBuffer(shape.elementCount) { out in
        borrow(a.data, b.data) { pa, pb in
            broadcastForward(output: out.baseAddress!, a: pa.baseAddress!, b: pb.baseAddress!, plan: plan, op)
        }
    }
    return (shape, values)
}

/// Sums a gradient of shape `broadcast` back to `shape` (the adjoint of broadcasting).
public func reduceToShape(_ gradient: [Float], from broadcast: [Int], to shape: [Int]) -> [Float] {
    if broadcast == shape { return gradient }
    let plan = BroadcastPlan(a: shape, b: broadcast, output: broadcast)
    return newBuffer(shape.elementCount, zeroed: true) { target in
        guard !gradient.isEmpty else { return }
        borrow(gradient) { broadcastReduce(target: target.baseAddress!, gradient: $0.baseAddress!, plan: plan) }
    }
}

/// The shape `a op b` broadcasts to.
@inline(__always)
private func broadcastShape(_ a: Tensor, _ b: Tensor) -> [Int] {
    a.shape == b.shape ? a.shape : broadcastShape(a.shape, b.shape)
}

extension Tensor {
    /// `a + b` with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b)
        return Tensor.op("add", inputs: [a, b], shape: shape) {
            broadcastBinary(a, b, "add", +).1
        } backward: { dOut in
            [
                a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
                b.requiresGrad ? reduceToShape(dOut, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a - b` with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b)
        return Tensor.op("sub", profiledAs: "subtract", inputs: [a, b], shape: shape) {
            broadcastBinary(a, b, "sub", -).1
        } backward: { dOut in
            [
                a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
                b.requiresGrad ? reduceToShape(mapElements(dOut) { -$0 }, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a * b` elementwise with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b)
        return Tensor.op("mul", profiledAs: "multiply", inputs: [a, b], shape: shape) {
            broadcastBinary(a, b, "mul", *).1
        } backward: { dOut in
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
        let shape = broadcastShape(a, b)
        return Tensor.op("div", profiledAs: "divide", inputs: [a, b], shape: shape) {
            let values = broadcastBinary(a, b, "div", /).1
            return (values, values)
        } backward: { dOut, values in
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
        Tensor.op("addScalar", inputs: [self], shape: shape) {
            mapElements(data) { $0 + s }
        } backward: {
            [$0]
        }
    }

    /// `a * s` for a scalar `s`.
    public func scaled(by s: Float) -> Tensor {
        Tensor.op("scale", inputs: [self], shape: shape) {
            mapElements(data) { $0 * s }
        } backward: { dOut in
            [mapElements(dOut) { $0 * s }]
        }
    }
}

/// `values.map(transform)` as a parallel, vectorisable loop into a fresh array.
@inline(__always)
func mapElements(_ values: [Float], _ transform: (Float) -> Float) -> [Float] {
    newBuffer(values.count) { out in
        borrow(values) { input in
            guard let out = out.baseAddress, let input = input.baseAddress else { return }
            parallelChunks(values.count, minimumPerThread: cheapElementwiseGrain) { range in
                for i in range { out[i] = transform(input[i]) }
            }
        }
    }
}
