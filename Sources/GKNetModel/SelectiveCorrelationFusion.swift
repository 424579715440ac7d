// SCF, Selective Correlation Fusion (docs/model.md, "Selective Correlation Fusion"): every local
// position is correlated with every long-distance token (cross-attention, softmax over tokens),
// and a per-channel gate then selects between the local feature and the gathered reference.
import GKNetNeuralNet
import GKNetTensorCore

final class SelectiveCorrelationFusion: Module {
    let query: Conv2d, key: Linear, value: Linear, project: Conv2d
    let gateFC1: Linear, gateFC2: Linear
    let heads: Int
    let topK: Int
    var isTraining = true

    init(channels: Int, configuration: GKNetConfiguration, generator: inout SplitMix64) {
        let attentionWidth = configuration.scfAttentionWidth
        heads = configuration.scfHeads
        topK = configuration.scfTopK
        query = Conv2d(
            inputChannels: channels, outputChannels: attentionWidth, kernelSize: 1, bias: true, generator: &generator)
        key = Linear(
            inputFeatures: configuration.lreWidth, outputFeatures: attentionWidth, bias: false, generator: &generator)
        value = Linear(inputFeatures: configuration.lreWidth, outputFeatures: channels, generator: &generator)
        project = Conv2d(
            inputChannels: channels, outputChannels: channels, kernelSize: 1, bias: true, generator: &generator)
        let squeeze = configuration.squeezeWidth(channels: channels)
        gateFC1 = Linear(inputFeatures: channels, outputFeatures: squeeze, generator: &generator)
        gateFC2 = Linear(inputFeatures: squeeze, outputFeatures: 2 * channels, generator: &generator)
    }

    var members: [ModuleMember] {
        [
            .child("query", query), .child("key", key), .child("value", value), .child("project", project),
            .child("gate.fc1", gateFC1), .child("gate.fc2", gateFC2),
        ]
    }

    /// - Parameters:
    ///   - local: L, N x C x H x W.
    ///   - tokens: G, N x T x D (T long-distance tokens).
    ///   - tokenBias: optional N x 1 x 1 x T added to the correlation logits (background bias).
    /// - Returns: alpha * L + beta * R, N x C x H x W.
    func callAsFunction(_ local: Tensor, tokens: Tensor, tokenBias: Tensor?) -> Tensor {
        let (n, c, h, w) = (local.shape[0], local.shape[1], local.shape[2], local.shape[3])
        let tokenCount = tokens.shape[1]
        let q = query(local)  // N x a x H x W
        let headWidth = q.shape[1] / heads
        let scale = 1 / Float(headWidth).squareRoot()
        // N x h x T x C/h
        let values = value(tokens).reshaped([n, tokenCount, heads, c / heads]).permuted([0, 2, 1, 3])
        // The attention applies no weight of its own: a cost trace charges it to this module.
        let gathered = CostTracer.scope(self) { () -> Tensor in  // N x h x C/h x HW
            if topK > 0 && topK < tokenCount {
                let queries = q.reshaped([n, heads, headWidth, h * w]).permuted([0, 1, 3, 2])  // N x h x HW x dh
                // N x h x dh x T
                let keys = key(tokens).reshaped([n, tokenCount, heads, headWidth]).permuted([0, 2, 3, 1])
                var logits = matmul(queries, keys) * scale  // N x h x HW x T
                if let tokenBias { logits = logits + tokenBias }
                logits = logits + topKMask(logits, k: topK)
                return matmul(logits.softmax(axis: -1), values).permuted([0, 1, 3, 2])
            }
            // The same attention, fused and tiled: no N x h x HW x T matrix, no permute of the queries.
            let keys = key(tokens).reshaped([n, tokenCount, heads, headWidth]).permuted([0, 2, 1, 3])  // N x h x T x dh
            return tokenAttention(
                queries: q.reshaped([n, heads, headWidth, h * w]), keys: keys, values: values, scale: scale,
                bias: tokenBias?.reshaped([n, tokenCount]))
        }
        let reference = project(gathered.reshaped([n, c, h, w]))
        // Selective fusion: a per-channel softmax over the two sources.
        let summary = (local + reference).mean(axes: [2, 3])  // N x C
        let squeezed = gateFC1(summary).relu()
        let weights = gateFC2(squeezed).reshaped([n, 2, c]).softmax(axis: 1)  // N x 2 x C
        let alpha = weights.sliced(axis: 1, range: 0..<1).reshaped([n, c, 1, 1])
        let beta = weights.sliced(axis: 1, range: 1..<2).reshaped([n, c, 1, 1])
        return alpha * local + beta * reference
    }
}

/// A constant additive mask (no gradient): 0 at the k largest entries of each row of the last
/// axis, -infinity elsewhere. Ties keep the lower index first (like torch.topk on distinct values).
func topKMask(_ logits: Tensor, k: Int) -> Tensor {
    let rowLength = logits.shape.last!
    let rows = logits.count / rowLength
    var mask = [Float](repeating: -.infinity, count: logits.count)
    logits.data.withUnsafeBufferPointer { source in
        mask.withUnsafeMutableBufferPointer { out in
            parallelChunks(rows, minimumPerThread: 64) { range in
                var order = [Int](repeating: 0, count: rowLength)
                for row in range {
                    let base = row * rowLength
                    for i in 0..<rowLength { order[i] = i }
                    order.sort {
                        source[base + $0] > source[base + $1] || (source[base + $0] == source[base + $1] && $0 < $1)
                    }
                    for i in order.prefix(k) { out[base + i] = 0 }
                }
            }
        }
    }
    return Tensor(shape: logits.shape, data: mask)
}

/// log(1 - m_tok + 1e-3), m_tok = foreground fraction of each token's 16x16 patch.
/// mask: N x 1 x H x W -> N x 1 x 1 x (h*w), no gradient.
func backgroundTokenBias(mask: Tensor, tokenHeight: Int, tokenWidth: Int) -> Tensor {
    withoutGradient {
        let stride = GKNetConfiguration.encoderStride
        let fraction = avgPool2d(mask.detached(), kernelSize: stride, stride: stride)
        precondition(
            fraction.shape[2] == tokenHeight && fraction.shape[3] == tokenWidth,
            "backgroundTokenBias: mask \(mask.shape) does not tile into \(tokenHeight)x\(tokenWidth) tokens")
        let bias = ((1 - fraction) + 1e-3).log()
        return bias.reshaped([mask.shape[0], 1, 1, tokenHeight * tokenWidth])
    }
}
