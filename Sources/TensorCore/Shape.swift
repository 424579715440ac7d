// Shape arithmetic: element counts, row-major strides, broadcasting.

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
    precondition(resolved >= 0 && resolved < Swift.max(rank, 1), "\(context()): axis \(axis) out of range for rank \(rank)")
    return resolved
}
