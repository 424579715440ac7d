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
    let input = x.data
    return Tensor.op("layerNorm", inputs: [x] + [weight, bias].compactMap { $0 }, shape: x.shape) {
        // Forward: per row, mean and 1 / std (kept for backward), then (x - mean) * rstd * weight + bias.
        var (mean, rstd) = ([Float](repeating: 0, count: rows), [Float](repeating: 0, count: rows))
        let output = newBuffer(x.count, zeroed: true) { out in
            borrowMutable(&mean, &rstd) { mean, rstd in
                borrow(input, weightValues, biasValues) { xs, w, b in
                    layerNormForward(
                        output: out, mean: mean, rstd: rstd, input: xs, weight: w, bias: b, width: width,
                        epsilon: epsilon)
                }
            }
        }
        return (output, (mean, rstd))
    } backward: { dOut, statistics in
        let (dInput, dWeight, dBias) = gradients(
            (input.count, x.requiresGrad), (width, weight?.requiresGrad == true), (width, bias?.requiresGrad == true)
        ) { dx, dw, db in
            borrow(dOut, input, statistics.0, statistics.1, weightValues) { dy, xs, mean, rstd, w in
                layerNormBackward(
                    dInput: dx, dWeight: dw, dBias: db, dOutput: dy, input: xs, mean: mean, rstd: rstd, weight: w,
                    width: width)
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
    let geometry = BatchNormGeometry(
        "batchNorm", x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance)
    let channels = geometry.channels
    let input = x.data
    let weightValues = weight?.data ?? [Float](repeating: 1, count: channels)
    let biasValues = bias?.data ?? [Float](repeating: 0, count: channels)
    return Tensor.op("batchNorm", inputs: [x] + [weight, bias].compactMap { $0 }, shape: x.shape) {
        let statistics = BatchNormStatistics(
            "batchNorm", geometry, x, runningMean: runningMean, runningVariance: runningVariance, training: training,
            momentum: momentum, epsilon: epsilon, sumAcrossProcesses: sumAcrossProcesses)
        let values = newBuffer(x.count) { out in
            borrow(input, statistics.mean, statistics.rstd, weightValues, biasValues) { xs, mean, rstd, w, b in
                batchNormForward(
                    output: out, input: xs, mean: mean, rstd: rstd, weight: w, bias: b, geometry: geometry)
            }
        }
        return (values, statistics)
    } backward: { dOut, statistics in
        let (dInput, dWeight, dBias) = gradients(
            (input.count, x.requiresGrad), (channels, weight?.requiresGrad == true),
            (channels, bias?.requiresGrad == true)
        ) { dx, dw, db in
            borrow(dOut, input, statistics.mean, statistics.rstd, weightValues) { dy, xs, mean, rstd, w in
                batchNormBackward(
                    dInput: dx, dWeight: dw, dBias: db, dOutput: dy, input: xs, mean: mean, rstd: rstd, weight: w,
                    geometry: geometry, training: training, synchronization: statistics.synchronization)
            }
        }
        return [dInput] + (weight == nil ? [] : [dWeight]) + (bias == nil ? [] : [dBias])
    }
}

extension BatchNormGeometry {
    /// The checked geometry of a batch-norm call (`op` names it in the messages).
    init(_ op: String, _ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVariance: Tensor) {
        precondition(x.rank >= 2, "\(op): input \(x.shape) must be [N, C, ...]")
        let channels = x.shape[1]
        for (name, tensor) in [
            ("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVariance", runningVariance),
        ] {
            if let tensor {
                precondition(
                    tensor.shape == [channels],
                    "\(op): input \(x.shape) and \(name) \(tensor.shape) do not match (need [\(channels)])")
            }
        }
        self.init(batch: x.shape[0], channels: channels, spatial: x.shape[2...].reduce(1, *))
    }
}

/// The statistics a batch norm normalises with, kept for its backward pass.
private struct BatchNormStatistics {
    var mean: [Float]
    /// 1 / sqrt(variance + epsilon).
    var rstd: [Float]
    /// What the backward pass needs to stay synchronized across processes, if it must.
    var synchronization: BatchNormSynchronization?

    /// The batch's statistics in training (updating the running statistics in place), with
    /// `sumAcrossProcesses` those of every process's batch; the running ones in evaluation.
    init(
        _ op: String, _ geometry: BatchNormGeometry, _ x: Tensor, runningMean: Tensor, runningVariance: Tensor,
        training: Bool,
        momentum: Float, epsilon: Float, sumAcrossProcesses: CrossProcessSum?
    ) {
        guard training else {
            (mean, rstd) = (runningMean.data, runningVariance.data.map { 1 / ($0 + epsilon).squareRoot() })
            return
        }
        var (mean, variance) = (
            [Float](repeating: 0, count: geometry.channels), [Float](repeating: 0, count: geometry.channels)
        )
        let count = borrow(x.data) { xs in
            borrowMutable(&mean, &variance) { mean, variance in
                guard let sumAcrossProcesses else {
                    batchNormStatistics(mean: mean, variance: variance, input: xs, geometry: geometry)
                    return Double(geometry.perChannel)
                }
                return synchronizedBatchNormStatistics(
                    mean: mean, variance: variance, input: xs, geometry: geometry,
                    sumAcrossProcesses: sumAcrossProcesses)
            }
        }
        precondition(count > 1, "\(op): input \(x.shape): training needs more than one value per channel")
        let correction = Float(count / (count - 1))
        for c in 0..<geometry.channels {
            runningMean.data[c] = (1 - momentum) * runningMean.data[c] + momentum * mean[c]
            runningVariance.data[c] = (1 - momentum) * runningVariance.data[c] + momentum * variance[c] * correction
        }
        self.mean = mean
        rstd = variance.map { 1 / ($0 + epsilon).squareRoot() }
        synchronization = sumAcrossProcesses.map { BatchNormSynchronization(sumAcrossProcesses: $0, count: count) }
    }
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
    if let residual {
        precondition(residual.shape == x.shape, "batchNormELU: input \(x.shape) and residual \(residual.shape) differ")
    }
    let geometry = BatchNormGeometry(
        "batchNormELU", x, weight: weight, bias: bias, runningMean: runningMean, runningVariance: runningVariance)
    let channels = geometry.channels
    let weightValues = weight?.data ?? [Float](repeating: 1, count: channels)
    let biasValues = bias?.data ?? [Float](repeating: 0, count: channels)
    let input = x.data
    return Tensor.op(
        "batchNormELU", profiledAs: "batchNormELU @\(x.shape.dropFirst(2).map(String.init).joined(separator: "x"))",
        inputs: [x] + [weight, bias, residual].compactMap { $0 }, shape: x.shape
    ) {
        let statistics = BatchNormStatistics(
            "batchNormELU", geometry, x, runningMean: runningMean, runningVariance: runningVariance, training: training,
            momentum: momentum, epsilon: epsilon, sumAcrossProcesses: sumAcrossProcesses)
        // y = elu(x * scale + shift (+ residual)) with scale = rstd * weight, shift = bias - mean * scale.
        let scale = (0..<channels).map { statistics.rstd[$0] * weightValues[$0] }
        let shift = (0..<channels).map { biasValues[$0] - statistics.mean[$0] * scale[$0] }
        let values = newBuffer(x.count) { out in
            borrow(input, scale, shift, residual?.data) { xs, a, b, rs in
                batchNormELUForward(
                    output: out, input: xs, residual: rs, scale: a, shift: b, alpha: alpha, geometry: geometry)
            }
        }
        return (values, (values, statistics))
    } backward: { dOut, saved in
        let (values, statistics) = saved
        // dInput and dResidual are overwritten by the kernel (accumulate: false), so they start uninitialised.
        var dWeight = gradientStorage((channels, weight?.requiresGrad == true), true)
        var dBias = gradientStorage((channels, bias?.requiresGrad == true), true)
        let (dInput, dResidual) = gradients(
            (input.count, x.requiresGrad), (input.count, residual?.requiresGrad == true), zeroed: false
        ) { dx, dr in
            borrowMutable(&dWeight, &dBias) { dw, db in
                borrow(dOut, input, values, statistics.mean, statistics.rstd, weightValues) {
                    dy, xs, ys, mean, rstd, w in
                    batchNormELUBackward(
                        dInput: dx, dResidual: dr, dWeight: dw, dBias: db, dOutput: dy, input: xs, output: ys,
                        mean: mean, rstd: rstd, weight: w, alpha: alpha, geometry: geometry, training: training,
                        accumulate: false, synchronization: statistics.synchronization)
                }
            }
        }
        return [dInput] + (weight == nil ? [] : [dWeight]) + (bias == nil ? [] : [dBias])
            + (residual == nil ? [] : [dResidual])
    }
}
