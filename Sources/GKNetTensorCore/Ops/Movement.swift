// Differentiable data movement: reshape, permute/transpose, slice, pad, concatenate, split.
// Kernels in Kernels/Movement.swift. Every op returns a new contiguous tensor.

/// How `padded(_:mode:)` fills the border.
public enum PaddingMode: Sendable {
    /// Zeros.
    case zero
    /// Mirror images that do not repeat the edge: [a b c] padded by 2 is [c b | a b c | b a]
    /// (PyTorch `F.pad(mode: "reflect")`); each padding must be smaller than its axis.
    case reflect
}

extension Tensor {
    /// The same elements in a new shape; one dimension may be -1 (inferred).
    ///
    /// No data is copied (the storage is shared copy-on-write); the gradient passes through unchanged.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        let inferred = newShape.indices.filter { newShape[$0] == -1 }
        precondition(inferred.count <= 1, "reshaped: more than one -1 in \(newShape) for tensor of shape \(shape)")
        precondition(
            newShape.allSatisfy { $0 >= -1 }, "reshaped: invalid dimension in \(newShape) for tensor of shape \(shape)")
        var resolved = newShape
        if let axis = inferred.first {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            precondition(
                known > 0 && count % known == 0,
                "reshaped: cannot reshape tensor of shape \(shape) (\(count) elements) to \(newShape)")
            resolved[axis] = count / known
        }
        precondition(
            resolved.elementCount == count,
            "reshaped: cannot reshape tensor of shape \(shape) (\(count) elements) to \(newShape) "
                + "(\(resolved.elementCount) elements)"
        )
        return Tensor.op("reshape", inputs: [self], shape: resolved) {
            data
        } backward: {
            [$0]
        }
    }

    /// The axes reordered: output axis i is input axis `axes[i]` (negative axes allowed).
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(
            axes.count == rank, "permuted: \(axes) is not a permutation of the axes of tensor of shape \(shape)")
        let resolved = axes.map {
            normalizedAxis($0, rank: rank, "permuted: axes \(axes) for tensor of shape \(shape)")
        }
        precondition(
            Set(resolved).count == rank,
            "permuted: \(axes) is not a permutation of the axes of tensor of shape \(shape)")
        let geometry = PermuteGeometry(shape: shape, axes: resolved)
        return Tensor.op("permute", profiledAs: "permuted", inputs: [self], shape: resolved.map { shape[$0] }) {
            newBuffer(count) { out in borrow(data) { permuteForward(output: out, input: $0, geometry: geometry) } }
        } backward: { [count] dOut in
            [gradient(count) { dx in borrow(dOut) { permuteBackward(dInput: dx, dOutput: $0, geometry: geometry) } }]
        }
    }

    /// Axes `a` and `b` swapped.
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        let context = "transposed: axes \(a), \(b) for tensor of shape \(shape)"
        var axes = Array(0..<rank)
        axes.swapAt(normalizedAxis(a, rank: rank, context), normalizedAxis(b, rank: rank, context))
        return permuted(axes)
    }

    /// The elements with index in `range` along `axis`: out[..., i, ...] = x[..., range.lowerBound + i, ...].
    public func sliced(axis: Int, range: Range<Int>) -> Tensor {
        let a = normalizedAxis(axis, rank: rank, "sliced: axis \(axis) for tensor of shape \(shape)")
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape[a],
            "sliced: range \(range) out of bounds for axis \(axis) of tensor of shape \(shape)")
        let block = AxisBlock(shape: shape, axis: a, start: range.lowerBound, length: range.count)
        var outputShape = shape
        outputShape[a] = range.count
        return Tensor.op("slice", profiledAs: "sliced", inputs: [self], shape: outputShape) {
            newBuffer(outputShape.elementCount, zeroed: true) { out in
                borrow(data) { gatherAxisBlock(narrow: out, wide: $0, block: block, accumulate: false) }
            }
        } backward: { [count] dOut in
            [gradient(count) { dx in borrow(dOut) { scatterAddAxisBlock(wide: dx, narrow: $0, block: block) } }]
        }
    }

    /// The tensor padded along every axis: out has size before + size + after on each axis.
    ///
    /// - Parameter padding: one (before, after) pair per axis, outermost axis first (PyTorch's
    ///   `F.pad` lists the last axis first instead).
    public func padded(_ padding: [(before: Int, after: Int)], mode: PaddingMode = .zero) -> Tensor {
        let description = padding.map { "(\($0.before), \($0.after))" }.joined(separator: ", ")
        precondition(
            padding.count == rank,
            "padded: \(padding.count) padding pairs [\(description)] for tensor of shape \(shape) (one per axis needed)"
        )
        for (axis, pair) in padding.enumerated() {
            precondition(
                pair.before >= 0 && pair.after >= 0,
                "padded: negative padding [\(description)] for tensor of shape \(shape)")
            precondition(
                mode == .zero || (pair.before == 0 && pair.after == 0)
                    || (pair.before < shape[axis] && pair.after < shape[axis]),
                "padded: reflect padding [\(description)] must be smaller than each axis of tensor of shape \(shape)")
        }
        let geometry = PaddingGeometry(shape: shape, padding: padding, reflect: mode == .reflect)
        let outputShape = zip(shape, padding).map { $0 + $1.before + $1.after }
        return Tensor.op("pad", profiledAs: "padded", inputs: [self], shape: outputShape) {
            newBuffer(outputShape.elementCount) { out in
                borrow(data) { padForward(output: out, input: $0, geometry: geometry) }
            }
        } backward: { [count] dOut in
            [gradient(count) { dx in borrow(dOut) { padBackward(dInput: dx, dOutput: $0, geometry: geometry) } }]
        }
    }

    /// The tensors joined along `axis`; all other dimensions must match.
    public static func concatenated(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenated: no tensors")
        let first = tensors[0].shape
        let a = normalizedAxis(axis, rank: first.count, "concatenated: axis \(axis) for shapes \(tensors.map(\.shape))")
        for tensor in tensors {
            precondition(
                tensor.rank == first.count
                    && tensor.shape.indices.allSatisfy { $0 == a || tensor.shape[$0] == first[$0] },
                "concatenated: shapes \(tensors.map(\.shape)) differ outside axis \(axis)")
        }
        var outputShape = first
        outputShape[a] = tensors.reduce(0) { $0 + $1.shape[a] }
        var blocks: [AxisBlock] = []
        var start = 0
        for tensor in tensors {
            blocks.append(AxisBlock(shape: outputShape, axis: a, start: start, length: tensor.shape[a]))
            start += tensor.shape[a]
        }
        let needsGradient = tensors.map(\.requiresGrad)
        return Tensor.op("concatenate", profiledAs: "concatenated", inputs: tensors, shape: outputShape) {
            newBuffer(outputShape.elementCount, zeroed: true) { out in
                for (tensor, block) in zip(tensors, blocks) {
                    borrow(tensor.data) { scatterAddAxisBlock(wide: out, narrow: $0, block: block) }
                }
            }
        } backward: { dOut in
            // forward: out[o, start_t + i, j] = x_t[o, i, j], so d x_t is block t of d out
            zip(blocks, needsGradient).map { block, needed in
                gradient(block.outer * block.length * block.inner, if: needed) { dx in
                    borrow(dOut) { gatherAxisBlock(narrow: dx, wide: $0, block: block, accumulate: true) }
                }
            }
        }
    }

    /// Consecutive pieces along `axis` with the given sizes (which must add up to the axis size).
    public func split(sizes: [Int], axis: Int) -> [Tensor] {
        let a = normalizedAxis(axis, rank: rank, "split: axis \(axis) for tensor of shape \(shape)")
        precondition(
            sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[a],
            "split: sizes \(sizes) do not add up to axis \(axis) of tensor of shape \(shape)")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return sliced(axis: a, range: start..<(start + size))
        }
    }
}
