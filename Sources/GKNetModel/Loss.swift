// The training loss, composed from primitives (no backward code of its own).
import TensorCore

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
    let plane = mask.count / n
    var denominators = [Float](repeating: 0, count: n)
    for i in 0..<n {
        var area: Float = 0
        for j in 0..<plane { area += mask.data[i * plane + j] }
        denominators[i] = Float(output.shape[1]) * max(area, minimumArea)
    }
    return (squared / Tensor(shape: [n], data: denominators)).mean()
}
