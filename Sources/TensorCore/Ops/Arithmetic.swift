// Elementwise binary arithmetic with NumPy/PyTorch broadcasting: add, sub, mul, div; and scalars.
// Forward: out[i] = a[bi(i)] op b[bj(i)]; backward: each input's gradient is reduced back to its
// own shape by `reduceToShape` (the one place broadcasting pullbacks are handled).

/// Applies `op` elementwise over the broadcast of `a` and `b`.
/// - Returns: the broadcast shape and the values.
@inline(__always)
func broadcastBinary(_ a: Tensor, _ b: Tensor, _ opName: String, _ op: (Float, Float) -> Float) -> ([Int], [Float]) {
    if a.shape == b.shape {
        var out = [Float](repeating: 0, count: a.count)
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    for i in 0..<po.count { po[i] = op(pa[i], pb[i]) }
                }
            }
        }
        return (a.shape, out)
    }
    let shape = broadcastShape(a.shape, b.shape)
    if b.count == 1 {
        let s = b.data[0]
        var out = [Float](repeating: 0, count: shape.elementCount)
        a.data.withUnsafeBufferPointer { pa in
            out.withUnsafeMutableBufferPointer { po in for i in 0..<po.count { po[i] = op(pa[i], s) } }
        }
        if a.count == out.count { return (shape, out) }
    }
    let ia = broadcastIndexMap(from: a.shape, to: shape)
    let ib = broadcastIndexMap(from: b.shape, to: shape)
    var out = [Float](repeating: 0, count: shape.elementCount)
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            out.withUnsafeMutableBufferPointer { po in
                for i in 0..<po.count { po[i] = op(pa[ia[i]], pb[ib[i]]) }
            }
        }
    }
    return (shape, out)
}

/// For every element of `target` (row-major), the index of the element of a tensor of shape
/// `source` it reads under broadcasting.
func broadcastIndexMap(from source: [Int], to target: [Int]) -> [Int] {
    let rank = target.count
    let padded = [Int](repeating: 1, count: rank - source.count) + source
    let sourceStrides = padded.rowMajorStrides
    var map = [Int](repeating: 0, count: target.elementCount)
    var index = [Int](repeating: 0, count: rank)
    var offset = 0
    for i in 0..<map.count {
        map[i] = offset
        // increment the multi-index, updating the source offset
        var axis = rank - 1
        while axis >= 0 {
            index[axis] += 1
            if padded[axis] != 1 { offset += sourceStrides[axis] }
            if index[axis] < target[axis] { break }
            if padded[axis] != 1 { offset -= sourceStrides[axis] * target[axis] }
            index[axis] = 0
            axis -= 1
        }
    }
    return map
}

/// Sums a gradient of shape `broadcast` back to `shape` (the adjoint of broadcasting).
public func reduceToShape(_ gradient: [Float], from broadcast: [Int], to shape: [Int]) -> [Float] {
    if broadcast == shape { return gradient }
    let map = broadcastIndexMap(from: shape, to: broadcast)
    var out = [Float](repeating: 0, count: shape.elementCount)
    for i in 0..<gradient.count { out[map[i]] += gradient[i] }
    return out
}

extension Tensor {
    /// `a + b` with broadcasting.
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shape, values) = broadcastBinary(a, b, "add", +)
        return Tensor(shape: shape, data: values).recorded("add", inputs: [a, b]) { dOut in
            [a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
             b.requiresGrad ? reduceToShape(dOut, from: shape, to: b.shape) : nil]
        }
    }

    /// `a - b` with broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shape, values) = broadcastBinary(a, b, "sub", -)
        return Tensor(shape: shape, data: values).recorded("sub", inputs: [a, b]) { dOut in
            [a.requiresGrad ? reduceToShape(dOut, from: shape, to: a.shape) : nil,
             b.requiresGrad ? reduceToShape(dOut.map { -$0 }, from: shape, to: b.shape) : nil]
        }
    }

    /// `a * b` elementwise with broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (shape, values) = broadcastBinary(a, b, "mul", *)
        return Tensor(shape: shape, data: values).recorded("mul", inputs: [a, b]) { dOut in
            // in the forward pass: out = a * b, so d a = dOut * b and d b = dOut * a
            let dOutTensor = Tensor(shape: shape, data: dOut)
            return [
                a.requiresGrad ? reduceToShape(broadcastBinary(dOutTensor, b, "mul", *).1, from: shape, to: a.shape) : nil,
                b.requiresGrad ? reduceToShape(broadcastBinary(dOutTensor, a, "mul", *).1, from: shape, to: b.shape) : nil,
            ]
        }
    }

    /// `a / b` elementwise with broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (shape, values) = broadcastBinary(a, b, "div", /)
        return Tensor(shape: shape, data: values).recorded("div", inputs: [a, b]) { dOut in
            // out = a / b: d a = dOut / b; d b = -dOut * a / b^2 = -dOut * out / b
            let dOutTensor = Tensor(shape: shape, data: dOut)
            var db: [Float]? = nil
            if b.requiresGrad {
                let outTimesDOut = broadcastBinary(dOutTensor, Tensor(shape: shape, data: values), "mul", *)
                let quotient = broadcastBinary(Tensor(shape: shape, data: outTimesDOut.1), b, "div", /).1
                db = reduceToShape(quotient.map { -$0 }, from: shape, to: b.shape)
            }
            return [
                a.requiresGrad ? reduceToShape(broadcastBinary(dOutTensor, b, "div", /).1, from: shape, to: a.shape) : nil,
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
        Tensor(shape: shape, data: data.map { $0 + s }).recorded("addScalar", inputs: [self]) { dOut in [dOut] }
    }

    /// `a * s` for a scalar `s`.
    public func scaled(by s: Float) -> Tensor {
        Tensor(shape: shape, data: data.map { $0 * s }).recorded("scale", inputs: [self]) { dOut in [dOut.map { $0 * s }] }
    }
}
