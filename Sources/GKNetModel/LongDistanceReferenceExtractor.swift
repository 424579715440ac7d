// LRE, the Long-distance Reference Extractor (docs/model.md, "Long-distance Reference Extractor";
// rows L0..L3 of "Layer by layer"): every position of the deepest encoder map becomes a token; a
// pre-LayerNorm transformer lets all tokens see each other, giving the long-distance references
// the kernel prediction blocks select from.
import GKNetNeuralNet
import GKNetTensorCore

/// Multi-head self-attention with nn.MultiheadAttention's parameter layout: `in_proj_weight`
/// (3D x D, rows q | k | v), `in_proj_bias` (3D), `out_proj.{weight,bias}`.
final class MultiHeadSelfAttention: Module {
    let inProjectionWeight: Tensor
    let inProjectionBias: Tensor
    let outProjection: Linear
    let heads: Int
    var isTraining = true

    init(width: Int, heads: Int, generator: inout SplitMix64) {
        self.heads = heads
        inProjectionWeight = Initializers.truncatedNormal(
            [3 * width, width], std: 0.02, low: -0.04, high: 0.04, generator: &generator)
        inProjectionBias = Initializers.zeros([3 * width])
        outProjection = Linear(inputFeatures: width, outputFeatures: width, generator: &generator)
    }

    var members: [ModuleMember] {
        [
            .parameter("in_proj_weight", inProjectionWeight), .parameter("in_proj_bias", inProjectionBias),
            .child("out_proj", outProjection),
        ]
    }

    /// x: N x L x D -> N x L x D.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let (n, l, d) = (x.shape[0], x.shape[1], x.shape[2])
        let headWidth = d / heads
        let qkv = linear(x, weight: inProjectionWeight, bias: inProjectionBias)  // N x L x 3D
        let split = qkv.reshaped([n, l, 3, heads, headWidth]).permuted([2, 0, 3, 1, 4])  // 3 x N x h x L x dh
        let q = split.sliced(axis: 0, range: 0..<1).reshaped([n, heads, l, headWidth])
        let k = split.sliced(axis: 0, range: 1..<2).reshaped([n, heads, l, headWidth])
        let v = split.sliced(axis: 0, range: 2..<3).reshaped([n, heads, l, headWidth])
        // The two products apply no weight of their own: a cost trace charges them to this module.
        let attended = CostTracer.scope(self) {
            let logits = matmul(q, k.transposed(2, 3)) * (1 / Float(headWidth).squareRoot())  // N x h x L x L
            return matmul(logits.softmax(axis: -1), v)  // N x h x L x dh
        }
        return outProjection(attended.permuted([0, 2, 1, 3]).reshaped([n, l, d]))
    }
}

/// Pre-LN transformer block: x += MHSA(LN1(x)); x += fc2(GELU(fc1(LN2(x)))).
final class TransformerBlock: Module {
    let norm1: LayerNorm, attention: MultiHeadSelfAttention, norm2: LayerNorm
    let fc1: Linear, fc2: Linear
    var isTraining = true

    init(width: Int, heads: Int, mlpRatio: Int, generator: inout SplitMix64) {
        norm1 = LayerNorm(normalizedShape: [width])
        attention = MultiHeadSelfAttention(width: width, heads: heads, generator: &generator)
        norm2 = LayerNorm(normalizedShape: [width])
        fc1 = Linear(inputFeatures: width, outputFeatures: mlpRatio * width, generator: &generator)
        fc2 = Linear(inputFeatures: mlpRatio * width, outputFeatures: width, generator: &generator)
    }

    var members: [ModuleMember] {
        [
            .child("norm1", norm1), .child("attention", attention), .child("norm2", norm2), .child("mlp.fc1", fc1),
            .child("mlp.fc2", fc2),
        ]
    }

    /// x: N x L x D -> N x L x D.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let attended = x + attention(norm1(x))
        return attended + fc2(fc1(norm2(attended)).gelu())
    }
}

/// The LRE: F_E^4 -> Conv1x1 `project` (C_4 -> D) -> tokens (N, L = h*w, D) -> + positional
/// embedding (bicubically resized when the grid is not inputSize/16) -> blocks -> LayerNorm.
/// With `useLRE` off only `project` exists.
final class LongDistanceReferenceExtractor: Module {
    let project: Conv2d
    let positionEmbedding: Tensor?
    let blocks: [TransformerBlock]
    let norm: LayerNorm?
    let grid: Int
    var isTraining = true

    init(configuration: GKNetConfiguration, generator: inout SplitMix64) {
        let width = configuration.lreWidth
        grid = configuration.positionGrid
        project = Conv2d(
            inputChannels: configuration.encoderWidths[3], outputChannels: width, kernelSize: 1, bias: true,
            generator: &generator)
        if configuration.useLRE {
            positionEmbedding = Initializers.truncatedNormal(
                [1, grid * grid, width], std: 0.02, low: -0.04, high: 0.04, generator: &generator)
            var blocks: [TransformerBlock] = []
            for _ in 0..<configuration.lreDepth {
                blocks.append(
                    TransformerBlock(
                        width: width, heads: configuration.lreHeads, mlpRatio: configuration.lreMLPRatio,
                        generator: &generator))
            }
            self.blocks = blocks
            norm = LayerNorm(normalizedShape: [width])
        } else {
            positionEmbedding = nil
            blocks = []
            norm = nil
        }
    }

    var members: [ModuleMember] {
        var result: [ModuleMember] = []
        if let positionEmbedding { result.append(.parameter("position_embedding", positionEmbedding)) }
        result.append(.child("project", project))
        if !blocks.isEmpty { result.append(.children("blocks", blocks)) }
        if let norm { result.append(.child("norm", norm)) }
        return result
    }

    /// The positional embedding for an h x w token grid: 1 x (h*w) x D.
    func positionEmbedding(height: Int, width: Int) -> Tensor? {
        guard let embedding = positionEmbedding else { return nil }
        if height == grid && width == grid { return embedding }
        let d = embedding.shape[2]
        let map = embedding.reshaped([1, grid, grid, d]).permuted([0, 3, 1, 2])  // 1 x D x G x G
        // A cost trace charges the resize (counted as two matmuls) to the LRE.
        let resized = CostTracer.scope(self) { resizeBicubic(map, height: height, width: width) }  // 1 x D x h x w
        return resized.reshaped([1, d, height * width]).permuted([0, 2, 1])
    }

    /// F_E^4: N x C_4 x h x w -> (tokens G: N x L x D, map G_map: N x D x h x w).
    func callAsFunction(_ deepest: Tensor) -> (tokens: Tensor, map: Tensor) {
        let (n, h, w) = (deepest.shape[0], deepest.shape[2], deepest.shape[3])
        let projected = project(deepest)
        let d = projected.shape[1]
        var tokens = projected.reshaped([n, d, h * w]).permuted([0, 2, 1])
        if let embedding = positionEmbedding(height: h, width: w), let norm {
            tokens = tokens + embedding
            for block in blocks { tokens = block(tokens) }
            tokens = norm(tokens)
        }
        let map = tokens.permuted([0, 2, 1]).reshaped([n, d, h, w])
        return (tokens, map)
    }
}
