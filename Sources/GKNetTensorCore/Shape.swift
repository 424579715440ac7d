// Shape arithmetic: element counts, row-major strides, broadcasting.
//
// The shape legend every kernel and op header uses (tensors are row-major NCHW, weights OIHW):
//   N batch, C channels (a convolution's input channels), H x W height x width (of the input),
//   Ho x Wo output height x width, O output channels or features, K kernel or window size,
//   G groups, L tokens, D token width (Dq, Dv: query/key and value widths), s stride, p padding,
//   d dilation. Words, not letters, for the rest: heads, planes (N·C), rows, columns, inner (a
//   shared dimension), taps (the K x K positions of a kernel, or the input samples one resampled
//   output reads), tiles (Winograd's 4x4 output tiles).

extension Array where Element == Int {
    /// Product of the dimensions (1 for a scalar shape).
    public var elementCount: Int { reduce(1, *) }

    /// Row-major strides of a contiguous tensor of this shape.
    public var rowMajorStrides: [Int] {
        var strides = [Int](repeating: 1, count: count)
        var running = 1
        for axis in stride(from: count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= self[axis]
        }
        return strides
    }
}

/// The NumPy/PyTorch broadcast of two shapes (align trailing axes; size-1 axes stretch).
/// - Precondition: the shapes are broadcast-compatible.
public func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
    let rank = Swift.max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        precondition(
            da == db || da == 1 || db == 1,
            "broadcast: shapes \(a) and \(b) are not compatible (axis \(i): \(da) vs \(db))")
        result[i] = Swift.max(da, db)
    }
    return result
}

/// Normalises a possibly negative axis against a rank.
@inlinable
public func normalizedAxis(_ axis: Int, rank: Int, _ context: @autoclosure () -> String = "") -> Int {
    let resolved = axis < 0 ? axis + rank : axis
    precondition(
        resolved >= 0 && resolved < Swift.max(rank, 1), "\(context()): axis \(axis) out of range for rank \(rank)")
    return resolved
}
