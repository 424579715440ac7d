// Multi-head attention (PyTorch nn.MultiheadAttention with batch_first=True), composed from
// matmul, softmax and movement ops; no gradient code of its own.
// Legend: N batch, L query tokens, S key/value tokens, D model width, h heads, E = D / h head width.
import Foundation
import GKNetTensorCore

/// Multi-head scaled dot-product attention, self or cross:
///
///     Q = query Wq^T + bq,  K = key Wk^T + bk,  V = value Wv^T + bv      (split into h heads)
///     head_i = softmax((Q_i / sqrt(E)) K_i^T) V_i
///     out = concat(head_1..h) Wo^T + bo
///
/// - Shapes: query [N, L, D], key [N, S, kdim], value [N, S, vdim] -> [N, L, D].
/// - State (PyTorch `nn.MultiheadAttention` names and layout, so weights load unchanged):
///   `in_proj_weight` [3D, D] (rows Wq, Wk, Wv) when kdim == vdim == D, otherwise
///   `q_proj_weight` [D, D], `k_proj_weight` [D, kdim], `v_proj_weight` [D, vdim];
///   then `in_proj_bias` [3D], `out_proj.weight` [D, D], `out_proj.bias` [D].
/// - Initialization: as PyTorch: projection weights Xavier-uniform (over the packed [3D, D]
///   matrix when packed), in-projection and output biases zero, `out_proj.weight` Linear's default.
/// - Not supported: attention masks, dropout on attention weights, `add_bias_kv`, `add_zero_attn`.
public final class MultiHeadAttention: Module {
    public let dimension: Int, heads: Int, keyDimension: Int, valueDimension: Int
    /// [3D, D], when the key and value widths equal D.
    public let inProjWeight: Tensor?
    /// [D, D], [D, kdim], [D, vdim], when they do not.
    public let qProjWeight: Tensor?, kProjWeight: Tensor?, vProjWeight: Tensor?
    public let inProjBias: Tensor?
    public let outProj: Linear
    public var isTraining = true

    public init(
        dimension: Int, heads: Int, keyDimension: Int? = nil, valueDimension: Int? = nil, bias: Bool = true,
        generator: inout SplitMix64
    ) {
        precondition(
            heads >= 1 && dimension % heads == 0,
            "MultiHeadAttention: width \(dimension) does not split into \(heads) heads")
        let (d, kdim, vdim) = (dimension, keyDimension ?? dimension, valueDimension ?? dimension)
        (self.dimension, self.heads, self.keyDimension, self.valueDimension) = (d, heads, kdim, vdim)
        if kdim == d && vdim == d {
            inProjWeight = Initializers.xavierUniform([3 * d, d], generator: &generator)
            (qProjWeight, kProjWeight, vProjWeight) = (nil, nil, nil)
        } else {
            inProjWeight = nil
            qProjWeight = Initializers.xavierUniform([d, d], generator: &generator)
            kProjWeight = Initializers.xavierUniform([d, kdim], generator: &generator)
            vProjWeight = Initializers.xavierUniform([d, vdim], generator: &generator)
        }
        inProjBias = bias ? Initializers.zeros([3 * d]) : nil
        outProj = Linear(inputFeatures: d, outputFeatures: d, bias: bias, generator: &generator)
        if let outBias = outProj.bias { outBias.data = [Float](repeating: 0, count: d) }
    }

    public var members: [ModuleMember] {
        var list: [ModuleMember] = []
        if let inProjWeight {
            list.append(.parameter("in_proj_weight", inProjWeight))
        } else if let qProjWeight, let kProjWeight, let vProjWeight {
            list += [
                .parameter("q_proj_weight", qProjWeight), .parameter("k_proj_weight", kProjWeight),
                .parameter("v_proj_weight", vProjWeight),
            ]
        }
        if let inProjBias { list.append(.parameter("in_proj_bias", inProjBias)) }
        return list + [.child("out_proj", outProj)]
    }

    /// Self-attention: query, key and value are all `x` [N, L, D].
    public func callAsFunction(_ x: Tensor) -> Tensor { callAsFunction(query: x, key: x, value: x) }

    /// Attention of `query` [N, L, D] over `key` [N, S, kdim] and `value` [N, S, vdim].
    public func callAsFunction(query: Tensor, key: Tensor, value: Tensor) -> Tensor {
        let d = dimension
        precondition(
            query.rank == 3 && query.shape[2] == d && key.rank == 3 && key.shape[2] == keyDimension
                && value.rank == 3 && value.shape[2] == valueDimension && key.shape[0] == query.shape[0]
                && value.shape[0] == query.shape[0] && key.shape[1] == value.shape[1],
            "MultiHeadAttention: query \(query.shape), key \(key.shape), value \(value.shape) do not fit [N, L, "
                + "\(d)], [N, S, \(keyDimension)], [N, S, \(valueDimension)]"
        )
        let (n, l, s, e) = (query.shape[0], query.shape[1], key.shape[1], d / heads)
        // The products use transposed or sliced weights, or none: a cost trace charges them to this module.
        let attended = CostTracer.scope(self) { () -> Tensor in
            let (q, k, v) = project(query: query, key: key, value: value)
            let qHeads = q.reshaped([n, l, heads, e]).permuted([0, 2, 1, 3])  // [N, h, L, E]
            let kHeadsT = k.reshaped([n, s, heads, e]).permuted([0, 2, 3, 1])  // [N, h, E, S]
            let vHeads = v.reshaped([n, s, heads, e]).permuted([0, 2, 1, 3])  // [N, h, S, E]
            let scores = matmul(qHeads * (1 / Float(e).squareRoot()), kHeadsT)  // [N, h, L, S]
            return matmul(scores.softmax(axis: 3), vHeads)  // [N, h, L, E]
        }
        return outProj(attended.permuted([0, 2, 1, 3]).reshaped([n, l, d]))
    }

    /// The three input projections; self-attention with packed weights uses one matmul.
    private func project(query: Tensor, key: Tensor, value: Tensor) -> (Tensor, Tensor, Tensor) {
        let d = dimension
        func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
            let y = matmul(x, w.transposed(0, 1))
            return b.map { y + $0 } ?? y
        }
        func biasSlice(_ index: Int) -> Tensor? { inProjBias?.sliced(axis: 0, range: (index * d)..<((index + 1) * d)) }
        if let inProjWeight {
            if query === key && key === value {
                let qkv = linear(query, inProjWeight, inProjBias).split(sizes: [d, d, d], axis: 2)
                return (qkv[0], qkv[1], qkv[2])
            }
            let w = inProjWeight.split(sizes: [d, d, d], axis: 0)
            return (
                linear(query, w[0], biasSlice(0)), linear(key, w[1], biasSlice(1)), linear(value, w[2], biasSlice(2))
            )
        }
        return (
            linear(query, qProjWeight!, biasSlice(0)), linear(key, kProjWeight!, biasSlice(1)),
            linear(value, vProjWeight!, biasSlice(2))
        )
    }
}
