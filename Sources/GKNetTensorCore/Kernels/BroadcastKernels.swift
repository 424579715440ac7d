// Broadcasting without index maps: the output is walked as rows of one contiguous inner run, and
// each operand reads that run either contiguously (stride 1) or as one repeated value (stride 0).
// Adjacent axes that step alike in both operands are merged first, so the common GKNet patterns
// ([N,C,H,W] with [1,C,1,1], [N,1,H,W] or [N,C,1,1]; [N,L,D] with [D]) become a handful of rows of
// a vectorised loop. `reduceToShape` (the adjoint) walks the same plan and sums instead.

/// Two operands of a broadcast over an output shape, with merged axes.
struct BroadcastPlan {
    /// Sizes of the outer (merged) axes, outermost first; their product is the number of rows.
    var outerSizes: [Int] = []
    var outerStridesA: [Int] = []
    var outerStridesB: [Int] = []
    /// Length of the innermost run and each operand's step along it (0 or 1).
    var inner = 1
    var innerStrideA = 0
    var innerStrideB = 0

    var rows: Int { outerSizes.reduce(1, *) }

    /// - Parameters: a, b broadcast to `output` (trailing-axis aligned).
    init(a: [Int], b: [Int], output: [Int]) {
        let rank = output.count
        func strides(_ shape: [Int]) -> [Int] {
            let padded = [Int](repeating: 1, count: rank - shape.count) + shape
            let contiguous = padded.rowMajorStrides
            return (0..<rank).map { padded[$0] == 1 ? 0 : contiguous[$0] }
        }
        let (sa, sb) = (strides(a), strides(b))
        // Merge from the innermost axis outwards while both operands keep stepping alike.
        var axes: [(size: Int, a: Int, b: Int)] = []
        for axis in stride(from: rank - 1, through: 0, by: -1) where output[axis] != 1 {
            if let last = axes.last, sa[axis] == last.a * last.size, sb[axis] == last.b * last.size {
                axes[axes.count - 1] = (last.size * output[axis], last.a, last.b)
            } else {
                axes.append((output[axis], sa[axis], sb[axis]))
            }
        }
        guard let innermost = axes.first else { return }  // a one-element output
        // The inner run must step by 0 or 1 in each operand; otherwise it becomes an outer axis of length-1 runs.
        if (innermost.a == 0 || innermost.a == 1) && (innermost.b == 0 || innermost.b == 1) {
            (inner, innerStrideA, innerStrideB) = (innermost.size, innermost.a, innermost.b)
            axes.removeFirst()
        }
        for axis in axes.reversed() {
            outerSizes.append(axis.size)
            outerStridesA.append(axis.a)
            outerStridesB.append(axis.b)
        }
    }

    /// The offsets into a and b of the first element of `row`.
    @inline(__always)
    func offsets(ofRow row: Int) -> (a: Int, b: Int) {
        var (remaining, a, b) = (row, 0, 0)
        for axis in stride(from: outerSizes.count - 1, through: 0, by: -1) {
            let index = remaining % outerSizes[axis]
            remaining /= outerSizes[axis]
            a += index * outerStridesA[axis]
            b += index * outerStridesB[axis]
        }
        return (a, b)
    }
}

/// out[i] = op(a[ia(i)], b[ib(i)]) over the broadcast output (rows of the plan, in parallel).
@inline(__always)
func broadcastForward(
    output: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>, plan: BroadcastPlan,
    _ op: (Float, Float) -> Float
) {
    let inner = plan.inner
    parallelChunks(plan.rows, minimumPerThread: max(1, cheapElementwiseGrain / max(1, inner))) { rows in
        for row in rows {
            let (offsetA, offsetB) = plan.offsets(ofRow: row)
            let (pa, pb, po) = (a + offsetA, b + offsetB, output + row * inner)
            switch (plan.innerStrideA, plan.innerStrideB) {
            case (1, 1): for i in 0..<inner { po[i] = op(pa[i], pb[i]) }
            case (1, _):
                let s = pb[0]
                for i in 0..<inner { po[i] = op(pa[i], s) }
            case (_, 1):
                let s = pa[0]
                for i in 0..<inner { po[i] = op(s, pb[i]) }
            default:
                let v = op(pa[0], pb[0])
                for i in 0..<inner { po[i] = v }
            }
        }
    }
}

/// target[it(i)] += gradient[i] over the broadcast shape: the sum of a broadcast gradient back onto
/// an operand (`plan` built with a = the operand's shape, b = the broadcast shape itself).
func broadcastReduce(target: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>, plan: BroadcastPlan) {
    let inner = plan.inner
    // Rows can land on the same target elements, so this stays on one thread (it is memory-bound).
    for row in 0..<plan.rows {
        let (offsetTarget, offsetGradient) = plan.offsets(ofRow: row)
        let (pt, pg) = (target + offsetTarget, gradient + offsetGradient)
        if plan.innerStrideA == 1 {
            for i in 0..<inner { pt[i] += pg[i] }
        } else {
            pt[0] += Float(sumInDouble(pg, count: inner))
        }
    }
}
