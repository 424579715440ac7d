// Differentiable token attention: every position of a feature map attends over a small set of
// tokens (GKNet's Selective Correlation Fusion). Kernels in Kernels/AttentionKernels.swift.
// Legend: N batch, h heads, Dq query/key width, Dv value width, S positions, T tokens.

/// Multi-head attention of channel-major queries over tokens, fused and tiled:
///
///     P[n,h,s,:] = softmax_t(scale · Σ_d queries[n,h,d,s] · keys[n,h,t,d] + bias[n,t])
///     out[n,h,e,s] = Σ_t P[n,h,s,t] · values[n,h,t,e]
///
/// The same as `matmul(softmax(matmul(q, k) * scale + bias), v)` with q = queries permuted to
/// N x h x S x Dq, but no N x h x S x T matrix is stored (the backward pass rebuilds it tile by
/// tile) and queries and output stay channel-major, so a 1x1-conv output N x (h·Dq) x H x W feeds
/// it reshaped and the result reshapes to N x (h·Dv) x H x W without a permute.
/// - Parameters:
///   - queries: N x h x Dq x S.
///   - keys: N x h x T x Dq.
///   - values: N x h x T x Dv.
///   - scale: the logit scale, usually 1 / sqrt(Dq).
///   - bias: N x T logit offsets per token (any shape with N·T elements and N first), or nil;
///     a constant (it must not require a gradient).
/// - Returns: N x h x Dv x S.
public func tokenAttention(queries: Tensor, keys: Tensor, values: Tensor, scale: Float, bias: Tensor? = nil) -> Tensor {
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "tokenAttention S=\(queries.shape[3]) T=\(keys.shape[2])") }
    let context = "tokenAttention: queries \(queries.shape), keys \(keys.shape), values \(values.shape)"
    precondition(queries.rank == 4 && keys.rank == 4 && values.rank == 4, "\(context) must all have rank 4 (N x h x Dq x S, N x h x T x Dq, N x h x T x Dv)")
    let (n, heads, queryWidth, positions) = (queries.shape[0], queries.shape[1], queries.shape[2], queries.shape[3])
    let tokens = keys.shape[2]
    precondition(
        keys.shape == [n, heads, tokens, queryWidth] && values.shape[0] == n && values.shape[1] == heads && values.shape[2] == tokens,
        "\(context) do not match (need keys [N, h, T, Dq] and values [N, h, T, Dv])")
    if let bias {
        precondition(bias.count == n * tokens && bias.rank >= 1 && bias.shape[0] == n, "\(context) and bias \(bias.shape): the bias needs N x T = \(n) x \(tokens) elements")
        precondition(!bias.requiresGrad, "\(context): the bias \(bias.shape) must be a constant (no gradient)")
    }
    let geometry = TokenAttentionGeometry(
        batch: n, heads: heads, queryWidth: queryWidth, valueWidth: values.shape[3], positions: positions, tokens: tokens)
    let recording = GradientMode.isEnabled && (queries.requiresGrad || keys.requiresGrad || values.requiresGrad)
    let (q, k, v, b) = (queries.data, keys.data, values.data, bias?.data)
    var logSumExp: [Float] = recording ? [Float](repeating: 0, count: geometry.rowCount) : []
    let output = [Float](unsafeUninitializedCapacity: geometry.outputCount) { buffer, initialized in
        q.withUnsafeBufferPointer { qp in
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { vp in
                    withOptionalPointer(b) { bp in
                        logSumExp.withUnsafeMutableBufferPointer { lp in
                            tokenAttentionForward(
                                output: buffer.baseAddress!, logSumExp: recording ? lp.baseAddress : nil, queries: qp.baseAddress!,
                                keys: kp.baseAddress!, values: vp.baseAddress!, bias: bp, scale: scale, geometry: geometry)
                        }
                    }
                }
            }
        }
        initialized = geometry.outputCount
    }
    let savedLogSumExp = logSumExp
    return Tensor(shape: [n, heads, geometry.valueWidth, positions], data: output)
        .recorded("tokenAttention", inputs: [queries, keys, values]) { dOut in
            var dq: [Float]? = queries.requiresGrad ? [Float](repeating: 0, count: geometry.queryCount) : nil
            var dk: [Float]? = keys.requiresGrad ? [Float](repeating: 0, count: geometry.keyCount) : nil
            var dv: [Float]? = values.requiresGrad ? [Float](repeating: 0, count: geometry.valueCount) : nil
            dOut.withUnsafeBufferPointer { dop in
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in
                        v.withUnsafeBufferPointer { vp in
                            withOptionalPointer(b) { bp in
                                savedLogSumExp.withUnsafeBufferPointer { lp in
                                    withMutableBaseAddress(&dq) { dqp in
                                        withMutableBaseAddress(&dk) { dkp in
                                            withMutableBaseAddress(&dv) { dvp in
                                                tokenAttentionBackward(
                                                    dQueries: dqp, dKeys: dkp, dValues: dvp, dOutput: dop.baseAddress!,
                                                    queries: qp.baseAddress!, keys: kp.baseAddress!, values: vp.baseAddress!,
                                                    bias: bp, logSumExp: lp.baseAddress!, scale: scale, geometry: geometry)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return [dq, dk, dv]
        }
}

/// Calls `body` with the base address of `values`, or nil.
@inline(__always)
private func withOptionalPointer<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress!) }
}
