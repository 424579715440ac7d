// The tensor type: float32, contiguous, row-major (NCHW for images), with reverse-mode autograd.
// Shape legend used across the package: N batch, C channels, H height, W width, K kernel size,
// O output channels, L tokens, D model width.

/// A dense float32 tensor with reference semantics.
///
/// Storage is contiguous and row-major; there are no strided views, so every movement op copies.
/// A tensor that `requiresGrad` either is a leaf (a parameter, `grad` accumulates into it) or
/// was produced by a recorded op (it holds a tape node until `backward()` frees it).
public final class Tensor: @unchecked Sendable {
    /// The dimensions, outermost first.
    public let shape: [Int]
    /// The elements in row-major order; `data.count == shape.elementCount`.
    public var data: [Float]
    /// Accumulated gradient of a leaf (or of a retained intermediate), same count as `data`.
    public var grad: [Float]?
    /// Whether gradients flow into this tensor.
    public var requiresGrad: Bool
    /// The op that produced this tensor, while the graph is alive.
    var node: TapeNode?
    /// Keep the gradient of this non-leaf tensor after `backward()` (like PyTorch `retain_grad`).
    public var retainsGrad = false

    /// Creates a tensor over existing elements.
    /// - Precondition: `data.count` equals the product of `shape`.
    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(
            data.count == shape.elementCount,
            "Tensor: \(data.count) elements do not fill shape \(shape) (\(shape.elementCount) needed)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
        MemoryStatistics.allocated(bytes: MemoryLayout<Float>.stride * shape.elementCount)
    }

    /// Storage accounting for `MemoryStatistics` (the same size as in `init`: `shape` is constant).
    deinit {
        MemoryStatistics.released(bytes: MemoryLayout<Float>.stride * shape.elementCount)
    }

    /// A tensor filled with one value.
    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(shape: shape, data: [Float](repeating: value, count: shape.elementCount), requiresGrad: requiresGrad)
    }

    /// A scalar (rank-0) tensor.
    public convenience init(scalar: Float) {
        self.init(shape: [], data: [scalar])
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 0, shape: shape, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(repeating: 1, shape: shape, requiresGrad: requiresGrad)
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// Number of elements.
    public var count: Int { data.count }
    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(data.count == 1, "item: tensor of shape \(shape) has \(data.count) elements, not 1")
        return data[0]
    }

    /// The gradient as a tensor of this tensor's shape, if any.
    public var gradTensor: Tensor? { grad.map { Tensor(shape: shape, data: $0) } }

    /// A copy that shares no graph with this tensor (PyTorch `detach().clone()`).
    public func detached() -> Tensor { Tensor(shape: shape, data: data) }

    /// Resets the accumulated gradient.
    public func zeroGrad() { grad = nil }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let preview = data.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), data: [\(preview)\(data.count > 8 ? ", ..." : "")])"
    }
}
