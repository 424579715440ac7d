// Differentiable layer norm and batch norm (PyTorch semantics), fused kernels in
// Kernels/Normalization.swift. Shapes: layer norm x [..., normalizedShape]; batch norm x [N, C, ...].

/// Layer normalisation over the trailing `normalizedShape` axes (PyTorch `F.layer_norm`).
///
/// out = (x - mean) / sqrt(var + epsilon) * weight + bias, with mean and biased variance over the
/// last `normalizedShape.count` axes of each row.
/// - Parameters:
///   - x: [..., normalizedShape].
///   - normalizedShape: the trailing dimensions of `x` to normalise over, e.g. [D].
///   - weight, bias: `normalizedShape`, or nil for 1 and 0.
public func layerNorm(_ x: Tensor, normalizedShape: [Int], weight: Tensor?, bias: Tensor?, epsilon: Float = 1e-5)
    -> Tensor
{
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "layerNorm") }
    let context = "layerNorm: input \(x.shape), normalizedShape \(normalizedShape)"
    precondition(
        !normalizedShape.isEmpty && x.rank >= normalizedShape.count
            && Array(x.shape.suffix(normalizedShape.count)) == normalizedShape,
        "\(context): normalizedShape must be the trailing dimensions of the input")
    if let weight {
        precondition(weight.shape == normalizedShape, "\(context) and weight \(weight.shape) do not match")
    }
    if let bias { precondition(bias.shape == normalizedShape, "\(context) and bias \(bias.shape) do not match") }
    let width = normalizedShape.elementCount
    let rows = width == 0 ? 0 : x.count / width
    let weightValues = weight?.data ?? [Float](repeating: 1, count: width)
    let biasValues = bias?.data ?? [Float](repeating: 0, count: width)
    var output = [Float](repeating: 0, count: x.count)
    var mean = [Float](repeating: 0, count: rows)
    var rstd = [Float](repeating: 0, count: rows)
    let input = x.data
    output.withUnsafeMutableBufferPointer { out in
        mean.withUnsafeMutableBufferPointer { mean in
            rstd.withUnsafeMutableBufferPointer { rstd in
                input.withUnsafeBufferPointer { xs in
                    weightValues.withUnsafeBufferPointer { w in
                        biasValues.withUnsafeBufferPointer { b in
                            layerNormForward(
                                output: out, mean: mean, rstd: rstd, input: xs, weight: w, bias: b, width: width,
                                epsilon: epsilon)
                        }
                    }
                }
            }
        }
    }
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return Tensor(shape: x.shape, data: output).recorded("layerNorm", inputs: inputs) { dOut in
        var dInput: [Float]? = x.requiresGrad ? [Float](repeating: 0, count: input.count) : nil
        var dWeight: [Float]? = weight?.requiresGrad == true ? [Float](repeating: 0, count: width) : nil
        var dBias: [Float]? = bias?.requiresGrad == true ? [Float](repeating: 0, count: width) : nil
        withOptionalMutableBuffers(&dInput, &dWeight, &dBias) { dx, dw, db in
            dOut.withUnsafeBufferPointer { dy in
                input.withUnsafeBufferPointer { xs in
                    mean.withUnsafeBufferPointer { mean in
                        rstd.withUnsafeBufferPointer { rstd in
                            weightValues.withUnsafeBufferPointer { w in
                                layerNormBackward(
                                    dInput: dx, dWeight: dw, dBias: db, dOutput: dy, input: xs, mean: mean, rstd: rstd,
                                    weight: w, width: width)
                            }
                        }
                    }
                }
            }
        }
        return [dInput] + (weight == nil ? [] : [dWeight]) + (bias == nil ? [] : [dBias])
    }
}

/// Adds per-channel values up across the processes of a data-parallel job, in place (synchronized
/// batch norm). Every process calls it with a buffer of the same length at the same point of its
/// forward or backward pass; in a single process it is never set.
public typealias CrossProcessSum = @Sendable (UnsafeMutableBufferPointer<Double>) -> Void

/// Batch normalisation over N and the spatial axes, per channel (PyTorch `F.batch_norm`).
///
/// out = (x - mean_c) / sqrt(var_c + epsilon) * weight_c + bias_c. In training, mean_c and var_c are
/// the batch statistics (biased variance) and the running statistics are updated in place:
/// running = (1 - momentum) * running + momentum * batch statistic, with the unbiased variance
/// (times M / (M - 1), M = N * spatial). In evaluation, the running statistics are used.
/// - Parameters:
///   - x: [N, C] or [N, C, spatial...] (NCHW).
///   - weight, bias: [C], or nil for 1 and 0.
///   - runningMean, runningVariance: [C], never differentiated.
///   - synchronizedBy: in training, the statistics are those of the union of every process's batch
///     (PyTorch `SyncBatchNorm`): their per-channel sums, and those of the backward pass, are added
///     up across processes with this hook (M counts every process's values). nil: this batch alone.
/// - Precondition: in training, more than one value per channel.
public func batchNorm(
    _ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor,
    training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5,
    synchronizedBy sumAcrossProcesses: CrossProcessSum? = nil
) -> Tensor {
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "batchNorm") }
    let (geometry, mean, variance, synchronization) = batchNormStatistics(
        "batchNorm", x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
        training: training, momentum: momentum, sumAcrossProcesses: sumAcrossProcesses)
    let channels = geometry.channels
    let input = x.data
    let rstd = variance.map { 1 / ($0 + epsilon).squareRoot() }
    let weightValues = weight?.data ?? [Float](repeating: 1, count: channels)
    let biasValues = bias?.data ?? [Float](repeating: 0, count: channels)
    let values = [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
        input.withUnsafeBufferPointer { xs in
            mean.withUnsafeBufferPointer { mean in
                rstd.withUnsafeBufferPointer { rstd in
                    weightValues.withUnsafeBufferPointer { w in
                        biasValues.withUnsafeBufferPointer { b in
                            batchNormForward(
                                output: buffer, input: xs, mean: mean, rstd: rstd, weight: w, bias: b,
                                geometry: geometry)
                        }
                    }
                }
            }
        }
        initialized = x.count
    }
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return Tensor(shape: x.shape, data: values).recorded("batchNorm", inputs: inputs) { dOut in
        var dInput: [Float]? = x.requiresGrad ? [Float](repeating: 0, count: input.count) : nil
        var dWeight: [Float]? = weight?.requiresGrad == true ? [Float](repeating: 0, count: channels) : nil
        var dBias: [Float]? = bias?.requiresGrad == true ? [Float](repeating: 0, count: channels) : nil
        withOptionalMutableBuffers(&dInput, &dWeight, &dBias) { dx, dw, db in
            dOut.withUnsafeBufferPointer { dy in
                input.withUnsafeBufferPointer { xs in
                    mean.withUnsafeBufferPointer { mean in
                        rstd.withUnsafeBufferPointer { rstd in
                            weightValues.withUnsafeBufferPointer { w in
                                batchNormBackward(
                                    dInput: dx, dWeight: dw, dBias: db, dOutput: dy, input: xs, mean: mean, rstd: rstd,
                                    weight: w, geometry: geometry, training: training, synchronization: synchronization)
                            }
                        }
                    }
                }
            }
        }
        return [dInput] + (weight == nil ? [] : [dWeight]) + (bias == nil ? [] : [dBias])
    }
}

/// Checks batch-norm arguments and returns the geometry and the statistics to normalise with: the
/// batch's (updating the running statistics in place) in training, the running ones in evaluation;
/// with `sumAcrossProcesses`, those of every process's batch, and what the backward pass needs to
/// stay synchronized.
private func batchNormStatistics(
    _ op: String, _ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor,
    training: Bool, momentum: Float, sumAcrossProcesses: CrossProcessSum?
) -> (BatchNormGeometry, mean: [Float], variance: [Float], BatchNormSynchronization?) {
    precondition(x.rank >= 2, "\(op): input \(x.shape) must be [N, C, ...]")
    let channels = x.shape[1]
    let context = "\(op): input \(x.shape)"
    for (name, tensor) in [
        ("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVariance", runningVariance),
    ] {
        if let tensor {
            precondition(
                tensor.shape == [channels], "\(context) and \(name) \(tensor.shape) do not match (need [\(channels)])")
        }
    }
    let geometry = BatchNormGeometry(batch: x.shape[0], channels: channels, spatial: x.shape[2...].reduce(1, *))
    guard training else { return (geometry, runningMean.data, runningVariance.data, nil) }
    var mean = [Float](repeating: 0, count: channels)
    var variance = [Float](repeating: 0, count: channels)
    let count = x.data.withUnsafeBufferPointer { xs in
        mean.withUnsafeMutableBufferPointer { mean in
            variance.withUnsafeMutableBufferPointer { variance in
                guard let sumAcrossProcesses else {
                    batchNormStatistics(mean: mean, variance: variance, input: xs, geometry: geometry)
                    return Double(geometry.perChannel)
                }
                return synchronizedBatchNormStatistics(
                    mean: mean, variance: variance, input: xs, geometry: geometry,
                    sumAcrossProcesses: sumAcrossProcesses)
            }
        }
    }
    precondition(count > 1, "\(context): training needs more than one value per channel")
    let correction = Float(count / (count - 1))
    for c in 0..<channels {
        runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean[c]
        runningVariance.data[c] = (1 - momentum) * runningVariance.data[c] + momentum * variance[c] * correction
    }
    let synchronization = sumAcrossProcesses.map {
        BatchNormSynchronization(sumAcrossProcesses: $0, count: count)
    }
    return (geometry, mean, variance, synchronization)
}

/// `batchNorm`, an optional residual sum and `elu(alpha:)`, fused: one pass forward, and only x and
/// the output are kept for the backward pass (not the normalised values or the sum). Same
/// arguments (`synchronizedBy` included), semantics and running statistics updates as `batchNorm`;
/// out = elu(batchNorm(x) + residual).
/// - Parameters:
///   - x: [N, C] or [N, C, spatial...] (NCHW).
///   - residual: nil, or a tensor of x's shape added before the ELU (a residual block's skip).
///   - alpha: the ELU's negative saturation, as in `elu(alpha:)`.
public func batchNormELU(
    _ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor,
    training: Bool, momentum: Float = 0.1, epsilon: Float = 1e-5, residual: Tensor? = nil, alpha: Float = 1,
    synchronizedBy sumAcrossProcesses: CrossProcessSum? = nil
) -> Tensor {
    let profiled = OpProfiler.begin()
    defer { OpProfiler.end(profiled, "batchNormELU @\(x.shape.dropFirst(2).map(String.init).joined(separator: "x"))") }
    if let residual {
        precondition(residual.shape == x.shape, "batchNormELU: input \(x.shape) and residual \(residual.shape) differ")
    }
    let (geometry, mean, variance, synchronization) = batchNormStatistics(
        "batchNormELU", x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance,
        training: training, momentum: momentum, sumAcrossProcesses: sumAcrossProcesses)
    let channels = geometry.channels
    let rstd = variance.map { 1 / ($0 + epsilon).squareRoot() }
    let weightValues = weight?.data ?? [Float](repeating: 1, count: channels)
    let biasValues = bias?.data ?? [Float](repeating: 0, count: channels)
    let scale = (0..<channels).map { rstd[$0] * weightValues[$0] }
    let shift = (0..<channels).map { biasValues[$0] - mean[$0] * scale[$0] }
    let input = x.data
    let residualValues = residual?.data
    let values = [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
        input.withUnsafeBufferPointer { xs in
            scale.withUnsafeBufferPointer { a in
                shift.withUnsafeBufferPointer { b in
                    withOptionalBuffer(residualValues) { rs in
                        batchNormELUForward(
                            output: buffer, input: xs, residual: rs, scale: a, shift: b, alpha: alpha,
                            geometry: geometry)
                    }
                }
            }
        }
        initialized = x.count
    }
    let inputs = [x] + [weight, bias, residual].compactMap { $0 }
    return Tensor(shape: x.shape, data: values).recorded("batchNormELU", inputs: inputs) { dOut in
        // dInput and dResidual are overwritten by the kernel (accumulate: false), so they start uninitialised.
        let count = input.count
        var dInput: [Float]? = x.requiresGrad ? [Float](unsafeUninitializedCapacity: count) { $1 = count } : nil
        var dResidual: [Float]? =
            residual?.requiresGrad == true ? [Float](unsafeUninitializedCapacity: count) { $1 = count } : nil
        var dWeight: [Float]? = weight?.requiresGrad == true ? [Float](repeating: 0, count: channels) : nil
        var dBias: [Float]? = bias?.requiresGrad == true ? [Float](repeating: 0, count: channels) : nil
        withOptionalMutableBuffers(&dInput, &dWeight, &dBias) { dx, dw, db in
            withOptionalMutableBuffer(&dResidual) { dr in
                dOut.withUnsafeBufferPointer { dy in
                    input.withUnsafeBufferPointer { xs in
                        values.withUnsafeBufferPointer { ys in
                            mean.withUnsafeBufferPointer { mean in
                                rstd.withUnsafeBufferPointer { rstd in
                                    weightValues.withUnsafeBufferPointer { w in
                                        batchNormELUBackward(
                                            dInput: dx, dResidual: dr, dWeight: dw, dBias: db, dOutput: dy, input: xs,
                                            output: ys,
                                            mean: mean, rstd: rstd, weight: w, alpha: alpha, geometry: geometry,
                                            training: training,
                                            accumulate: false, synchronization: synchronization)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return [dInput] + (weight == nil ? [] : [dWeight]) + (bias == nil ? [] : [dBias])
            + (residual == nil ? [] : [dResidual])
    }
}
