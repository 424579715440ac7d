// The training loss, composed from primitives (no backward code of its own).
import GKNetTensorCore

/// Foreground-normalised MSE (iDIH's MaskWeightedMSE) in the model's 0...1 RGB space:
///
///     loss = mean_n [ sum_{c,y,x} (output - target)^2 / (3 * max(sum_{y,x} mask_n, minimumArea)) ]
///
/// The denominator is a constant (no gradient through the mask). With the mask blend the
/// background error is 0, so the loss is fMSE / 255^2 up to the minimum-area clamp.
/// - Parameters: output, target N x 3 x H x W; mask N x 1 x H x W.
/// - Parameter minimumArea: pixels (absolute, at every resolution; iDIH's 100 at 256x256).
public func foregroundNormalizedMSE(output: Tensor, target: Tensor, mask: Tensor, minimumArea: Float = 100) -> Tensor {
    precondition(
        output.shape == target.shape,
        "foregroundNormalizedMSE: output \(output.shape) and target \(target.shape) differ")
    precondition(
        mask.rank == 4 && mask.shape[0] == output.shape[0],
        "foregroundNormalizedMSE: mask \(mask.shape) does not match output \(output.shape)")
    let n = output.shape[0]
    let difference = output - target
    let squared = (difference * difference).reshaped([n, -1]).sum(axes: [1])  // N
    let denominators = foregroundDenominators(mask: mask, channels: output.shape[1], minimumArea: minimumArea)
    return (squared / Tensor(shape: [n], data: denominators)).mean()
}

/// Per image: channels x max(mask area, minimumArea), the denominator of the foreground MSE.
func foregroundDenominators(mask: Tensor, channels: Int, minimumArea: Float) -> [Float] {
    let n = mask.shape[0]
    let plane = mask.count / n
    return (0..<n).map { i in
        var area: Float = 0
        for j in 0..<plane { area += mask.data[i * plane + j] }
        return Float(channels) * max(area, minimumArea)
    }
}

/// The foreground MSE of each image relative to its composite's own (docs/training.md, `loss`):
///
///     loss = mean_n [ fMSE_n(output) / (fMSE_n(composite) + floor) ]
///
/// the per-image ratio that "images made worse" counts (> 1), so a composite that needs little change
/// weighs as much as one that needs a lot (with the plain foreground MSE a near-harmonious composite
/// hardly counts, and a model that moves every foreground by a typical amount is rewarded). `floor`
/// (0...1 units; 100 / 255^2 = fMSE 100) bounds the weight of untouched composites. The weights are
/// constants (no gradient through the composite). Shapes as in `foregroundNormalizedMSE`.
public func compositeRelativeMSE(
    output: Tensor, composite: Tensor, target: Tensor, mask: Tensor, minimumArea: Float = 100, floor: Float
) -> Tensor {
    precondition(
        output.shape == target.shape && composite.shape == target.shape,
        "compositeRelativeMSE: output \(output.shape), composite \(composite.shape) and target \(target.shape) differ")
    precondition(
        mask.rank == 4 && mask.shape[0] == output.shape[0],
        "compositeRelativeMSE: mask \(mask.shape) does not match output \(output.shape)")
    let n = output.shape[0]
    let denominators = foregroundDenominators(mask: mask, channels: output.shape[1], minimumArea: minimumArea)
    let plane = target.count / n
    let weights = (0..<n).map { i -> Float in
        var squares: Float = 0
        for j in i * plane..<(i + 1) * plane {
            let d = composite.data[j] - target.data[j]
            squares += d * d
        }
        return 1 / (denominators[i] * (squares / denominators[i] + floor))
    }
    let difference = output - target
    let squared = (difference * difference).reshaped([n, -1]).sum(axes: [1])  // N
    return (squared * Tensor(shape: [n], data: weights)).mean()
}
