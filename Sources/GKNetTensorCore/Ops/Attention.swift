// Differentiable token attention: every position of a feature map attends over a small set of
// tokens (GKNet's Selective Correlation Fusion). Kernels in Kernels/AttentionKernels.swift.
// Legend (Shape.swift): N batch, heads, Dq query/key width, Dv value width, HW positions (H·W), L tokens.

/// Multi-head attention of channel-major queries over tokens, fused and tiled:
///
///     P[n,h,s,:] = softmax_t(scale · Σ_d queries[n,h,d,s] · keys[n,h,t,d] + bias[n,t])
///     out[n,h,e,s] = Σ_t P[n,h,s,t] · values[n,h,t,e]
///
/// The same as `matmul(softmax(matmul(q, k) * scale + bias), v)` with q = queries permuted to
/// N x heads x HW x Dq, but no N x heads x HW x L matrix is stored (the backward pass rebuilds it tile by
/// tile) and queries and output stay channel-major, so a 1x1-conv output N x (heads·Dq) x H x W feeds
/// it reshaped and the result reshapes to N x (heads·Dv) x H x W without a permute.
/// - Parameters:
///   - queries: N x heads x Dq x HW.
///   - keys: N x heads x L x Dq.
///   - values: N x heads x L x Dv.
///   - scale: the logit scale, usually 1 / sqrt(Dq).
///   - bias: N x L logit offsets per token (any shape with N·L elements and N first), or nil;
///     a constant (it must not require a gradient).
/// - Returns: N x heads x Dv x HW.
public func tokenAttention(queries: Tensor, keys: Tensor, values: Tensor, scale: Float, bias: Tensor? = nil) -> Tensor {
    let geometry = TokenAttentionGeometry(queries: queries, keys: keys, values: values, bias: bias)
    let recording = GradientMode.isEnabled && (queries.requiresGrad || keys.requiresGrad || values.requiresGrad)
    let (q, k, v, b) = (queries.data, keys.data, values.data, bias?.data)
    return Tensor.op(
        "tokenAttention", profiledAs: "tokenAttention S=\(geometry.positions) T=\(geometry.tokens)",
        inputs: [queries, keys, values],
        shape: [geometry.batch, geometry.heads, geometry.valueWidth, geometry.positions], macs: geometry.macs
    ) {
        // Forward: P = softmax(scale · Q K + bias) tile by tile, out = P V; keeps log Σ exp per row for backward.
        var logSumExp: [Float] = recording ? [Float](repeating: 0, count: geometry.rowCount) : []
        let output = newBuffer(geometry.outputCount) { out in
            borrow(q, k, v, b) { qp, kp, vp, bp in
                borrowMutable(&logSumExp) { lp in
                    tokenAttentionForward(
                        output: out.baseAddress!, logSumExp: recording ? lp.baseAddress : nil,
                        queries: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!,
                        bias: bp?.baseAddress, scale: scale, geometry: geometry)
                }
            }
        }
        return (output, logSumExp)
    } backward: { dOut, logSumExp in
        // Backward: P is rebuilt tile by tile from the saved log Σ exp.
        let (dq, dk, dv) = gradients(
            (geometry.queryCount, queries.requiresGrad), (geometry.keyCount, keys.requiresGrad),
            (geometry.valueCount, values.requiresGrad)
        ) { dqp, dkp, dvp in
            borrow(dOut, q, k, v, b, logSumExp) { dy, qp, kp, vp, bp, lp in
                tokenAttentionBackward(
                    dQueries: dqp?.baseAddress, dKeys: dkp?.baseAddress, dValues: dvp?.baseAddress,
                    dOutput: dy.baseAddress!, queries: qp.baseAddress!,
                    keys: kp.baseAddress!, values: vp.baseAddress!, bias: bp?.baseAddress, logSumExp: lp.baseAddress!,
                    scale: scale, geometry: geometry)
            }
        }
        return [dq, dk, dv]
    }
}

extension TokenAttentionGeometry {
    /// The checked geometry of `tokenAttention(queries:keys:values:scale:bias:)`.
    init(queries: Tensor, keys: Tensor, values: Tensor, bias: Tensor?) {
        let context = "tokenAttention: queries \(queries.shape), keys \(keys.shape), values \(values.shape)"
        precondition(
            queries.rank == 4 && keys.rank == 4 && values.rank == 4,
            "\(context) must all have rank 4 (N x h x Dq x S, N x h x T x Dq, N x h x T x Dv)")
        let (n, heads, queryWidth, positions) = (queries.shape[0], queries.shape[1], queries.shape[2], queries.shape[3])
        let tokens = keys.shape[2]
        precondition(
            keys.shape == [n, heads, tokens, queryWidth] && values.shape[0] == n && values.shape[1] == heads
                && values.shape[2] == tokens,
            "\(context) do not match (need keys [N, h, T, Dq] and values [N, h, T, Dv])")
        if let bias {
            precondition(
                bias.count == n * tokens && bias.rank >= 1 && bias.shape[0] == n,
                "\(context) and bias \(bias.shape): the bias needs N x T = \(n) x \(tokens) elements")
            precondition(!bias.requiresGrad, "\(context): the bias \(bias.shape) must be a constant (no gradient)")
        }
        self.init(
            batch: n, heads: heads, queryWidth: queryWidth, valueWidth: values.shape[3], positions: positions,
            tokens: tokens)
    }

    /// Multiply-accumulates of the two products, logits (Dq per position and token) and P V (Dv).
    var macs: Int { batch * heads * positions * tokens * (queryWidth + valueWidth) }
}
