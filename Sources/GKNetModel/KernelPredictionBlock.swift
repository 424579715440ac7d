// KPB, the Kernel Prediction Blocks (docs/model.md, "Kernel Prediction Blocks"): level by level,
// deep to shallow, upsample the previous block's fused feature, merge it with the encoder skip,
// fuse in the long-distance references (SCF) and predict per-pixel harmony kernels from the result.
import GKNetNeuralNet
import GKNetTensorCore

/// K = conv2(ELU(conv1(P))): C -> g*k*k per-pixel kernels, no activation. `conv2` starts at zero,
/// so the untrained network is the plain U-Net path.
final class KernelHead: Module {
    let conv1: Conv2d, conv2: Conv2d
    var isTraining = true

    init(channels: Int, groups: Int, kernelSize: Int, generator: inout SplitMix64) {
        conv1 = Conv2d(
            inputChannels: channels, outputChannels: channels, kernelSize: 3, padding: 1, bias: true,
            generator: &generator)
        conv2 = Conv2d(
            inputChannels: channels, outputChannels: groups * kernelSize * kernelSize, kernelSize: 1, bias: true,
            generator: &generator)
    }

    var members: [ModuleMember] { [.child("conv1", conv1), .child("conv2", conv2)] }

    /// P: N x C x H x W -> K: N x (g*k*k) x H x W.
    func callAsFunction(_ p: Tensor) -> Tensor { conv2(conv1(p).elu()) }
}

/// KPB^l (C = C_l; the previous width is C_{l+1}, or D for the deepest block):
///   U = `up` ELU(BN(Conv3x3(resize(P^{l+1}))))        C_prev -> C
///   L = `merge` ELU(BN(Conv1x1(concat[U, F_E^l])))    2C -> C
///   P = `scf`(L, G)   (useSCF off: `fuse` ELU(BN(Conv1x1(concat[L, resize(G_map)]))), C + D -> C)
///   K = `kernel_head`(P)   (only with useKernelModulation)
final class KernelPredictionBlock: Module {
    let up: ConvNormELU, merge: ConvNormELU
    let scf: SelectiveCorrelationFusion?
    let fuse: ConvNormELU?
    let kernelHead: KernelHead?
    var isTraining = true

    init(configuration: GKNetConfiguration, previousChannels: Int, channels: Int, generator: inout SplitMix64) {
        up = ConvNormELU(previousChannels, channels, kernelSize: 3, generator: &generator)
        merge = ConvNormELU(2 * channels, channels, kernelSize: 1, generator: &generator)
        if configuration.useSCF {
            scf = SelectiveCorrelationFusion(channels: channels, configuration: configuration, generator: &generator)
            fuse = nil
        } else {
            scf = nil
            fuse = ConvNormELU(channels + configuration.lreWidth, channels, kernelSize: 1, generator: &generator)
        }
        kernelHead =
            configuration.useKernelModulation
            ? KernelHead(
                channels: channels, groups: configuration.kernelGroups(channels: channels),
                kernelSize: configuration.kernelSize, generator: &generator)
            : nil
    }

    var members: [ModuleMember] {
        var result: [ModuleMember] = [.child("up", up), .child("merge", merge)]
        if let scf { result.append(.child("scf", scf)) }
        if let fuse { result.append(.child("fuse", fuse)) }
        if let kernelHead { result.append(.child("kernel_head", kernelHead)) }
        return result
    }

    /// - Returns: the fused feature P^l (N x C x H_l x W_l) and the kernels K^l if modulation is on.
    func callAsFunction(previous: Tensor, skip: Tensor, tokens: Tensor, tokenMap: Tensor, tokenBias: Tensor?) -> (
        fused: Tensor, kernels: Tensor?
    ) {
        let (h, w) = (skip.shape[2], skip.shape[3])
        let upsampled = up(resizeBilinear(previous, height: h, width: w))
        let local = merge(Tensor.concatenated([upsampled, skip], axis: 1))
        let fused: Tensor
        if let scf {
            fused = scf(local, tokens: tokens, tokenBias: tokenBias)
        } else {
            let global = resizeBilinear(tokenMap, height: h, width: w)
            fused = fuse!(Tensor.concatenated([local, global], axis: 1))
        }
        return (fused, kernelHead.map { $0(fused) })
    }
}
