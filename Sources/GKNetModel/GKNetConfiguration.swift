// Every hyper-parameter of GKNet, with its presets (docs/model.md, "Configuration"). JSON keys are snake_case and
// identical to the PyTorch twin's `GKNetConfig` fields (Scripts/reference/gknet.py).
import Foundation

/// How the network's prediction becomes the output image.
public enum OutputBlend: String, Codable, Sendable, CaseIterable {
    /// output = mask * prediction + (1 - mask) * composite: background pixels are returned exactly.
    case mask
    /// iDIH's learned blend: a = sigmoid(3 Conv1x1(X0)), output = a * composite + (1 - a) * prediction.
    case learned
}

/// What the RGB head predicts (docs/model.md, "Output heads").
public enum OutputHead: String, Codable, Sendable, CaseIterable {
    /// The image itself: prediction = denormalize(Conv1x1(X0)) (the head of docs/model.md, "Layer by layer").
    case image
    /// A change of the composite: prediction = composite + Conv1x1(X0), the convolution zero at
    /// initialisation, so the untrained network returns the composite.
    case residual
    /// A per-pixel affine colour transform of the composite: prediction = A c + b with
    /// A = I + (9 channels of Conv1x1(X0)), b = its last 3 channels, zero at initialisation.
    case affine

    /// Channels of the head convolution.
    public var channels: Int { self == .affine ? 12 : 3 }
}

/// The configuration of a GKNet (docs/model.md, "Configuration" and "Choices").
public struct GKNetConfiguration: Codable, Sendable, Equatable {
    /// Channels of encoder stages 1..4 (C_1..C_4); decoder level l and KPB^l use C_l.
    public var encoderWidths: [Int] = [64, 128, 256, 512]
    /// Channels of decoder level 0 (full resolution), the input of the RGB head.
    public var decoderOutputWidth = 32
    /// Token width D of the Long-distance Reference Extractor (1x1 projection C_4 -> D).
    public var lreWidth = 256
    /// Number of pre-LayerNorm transformer blocks in the LRE.
    public var lreDepth = 4
    /// LRE attention heads (head dim = lreWidth / lreHeads = 32 in every preset).
    public var lreHeads = 8
    /// LRE MLP hidden width = lreMLPRatio * D (exact erf GELU).
    public var lreMLPRatio = 4
    /// SCF query/key width a, split over `scfHeads` heads.
    public var scfAttentionWidth = 128
    /// SCF attention heads (head dim 32 in every preset).
    public var scfHeads = 4
    /// SCF channel-selection bottleneck = max(C_l / 4, scfSqueezeFloor).
    public var scfSqueezeFloor = 32
    /// Size k of the per-pixel harmony kernels (3 or 5).
    public var kernelSize = 3
    /// Number of kernel prediction blocks / modulated decoder levels, deepest first (1...3).
    public var kernelLevels = 3
    /// Channels sharing one kernel: groups g_l = max(C_l / kernelGroupChannels, 1).
    public var kernelGroupChannels = 16
    /// Transformer blocks and positional embedding in the LRE (off: tokens are the projected F_E^4).
    public var useLRE = true
    /// Selective Correlation Fusion in each KPB (off: concat[L, resize(G_map)] -> Conv1x1 + BN + ELU).
    public var useSCF = true
    /// Apply the predicted kernels in the decoder (off: no kernel heads, X^l += P^l).
    public var useKernelModulation = true
    /// 0 = off; else keep only the k largest correlation logits per query before the softmax.
    public var scfTopK = 0
    /// Add log(1 - m_tok + 1e-3) to the SCF logits (m_tok = foreground fraction of a token's patch).
    public var scfBackgroundBias = false
    /// How the prediction is blended with the composite.
    public var outputBlend: OutputBlend = .mask
    /// What the head predicts (`image` in every preset).
    public var output: OutputHead = .image
    /// Training resolution; the positional embedding covers an (inputSize/16)^2 grid and is
    /// resized bicubically (align_corners=False) for other input sizes.
    public var inputSize = 256
    /// ImageNet statistics: RGB in 0...1 is normalised with these, the mask is not.
    public var imageMean: [Float] = [0.485, 0.456, 0.406]
    public var imageStd: [Float] = [0.229, 0.224, 0.225]

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case encoderWidths = "encoder_widths", decoderOutputWidth = "decoder_output_width"
        case lreWidth = "lre_width", lreDepth = "lre_depth", lreHeads = "lre_heads", lreMLPRatio = "lre_mlp_ratio"
        case scfAttentionWidth = "scf_attention_width", scfHeads = "scf_heads", scfSqueezeFloor = "scf_squeeze_floor"
        case kernelSize = "kernel_size", kernelLevels = "kernel_levels", kernelGroupChannels = "kernel_group_channels"
        case useLRE = "use_lre", useSCF = "use_scf", useKernelModulation = "use_kernel_modulation"
        case scfTopK = "scf_top_k", scfBackgroundBias = "scf_background_bias", outputBlend = "output_blend", output
        case inputSize = "input_size", imageMean = "image_mean", imageStd = "image_std"
    }

    /// Missing keys take their defaults, so older config files keep loading.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = GKNetConfiguration()
        encoderWidths = try c.decodeIfPresent([Int].self, forKey: .encoderWidths) ?? d.encoderWidths
        decoderOutputWidth = try c.decodeIfPresent(Int.self, forKey: .decoderOutputWidth) ?? d.decoderOutputWidth
        lreWidth = try c.decodeIfPresent(Int.self, forKey: .lreWidth) ?? d.lreWidth
        lreDepth = try c.decodeIfPresent(Int.self, forKey: .lreDepth) ?? d.lreDepth
        lreHeads = try c.decodeIfPresent(Int.self, forKey: .lreHeads) ?? d.lreHeads
        lreMLPRatio = try c.decodeIfPresent(Int.self, forKey: .lreMLPRatio) ?? d.lreMLPRatio
        scfAttentionWidth = try c.decodeIfPresent(Int.self, forKey: .scfAttentionWidth) ?? d.scfAttentionWidth
        scfHeads = try c.decodeIfPresent(Int.self, forKey: .scfHeads) ?? d.scfHeads
        scfSqueezeFloor = try c.decodeIfPresent(Int.self, forKey: .scfSqueezeFloor) ?? d.scfSqueezeFloor
        kernelSize = try c.decodeIfPresent(Int.self, forKey: .kernelSize) ?? d.kernelSize
        kernelLevels = try c.decodeIfPresent(Int.self, forKey: .kernelLevels) ?? d.kernelLevels
        kernelGroupChannels = try c.decodeIfPresent(Int.self, forKey: .kernelGroupChannels) ?? d.kernelGroupChannels
        useLRE = try c.decodeIfPresent(Bool.self, forKey: .useLRE) ?? d.useLRE
        useSCF = try c.decodeIfPresent(Bool.self, forKey: .useSCF) ?? d.useSCF
        useKernelModulation = try c.decodeIfPresent(Bool.self, forKey: .useKernelModulation) ?? d.useKernelModulation
        scfTopK = try c.decodeIfPresent(Int.self, forKey: .scfTopK) ?? d.scfTopK
        scfBackgroundBias = try c.decodeIfPresent(Bool.self, forKey: .scfBackgroundBias) ?? d.scfBackgroundBias
        outputBlend = try c.decodeIfPresent(OutputBlend.self, forKey: .outputBlend) ?? d.outputBlend
        output = try c.decodeIfPresent(OutputHead.self, forKey: .output) ?? d.output
        inputSize = try c.decodeIfPresent(Int.self, forKey: .inputSize) ?? d.inputSize
        imageMean = try c.decodeIfPresent([Float].self, forKey: .imageMean) ?? d.imageMean
        imageStd = try c.decodeIfPresent([Float].self, forKey: .imageStd) ?? d.imageStd
    }

    /// The deepest feature map is input / 16 (four stride-2 stages): one LRE token per position.
    public static let encoderStride = 16

    /// `paper` (docs/model.md, "Layer by layer"), `small` (widths halved), `tiny` (widths quartered).
    public static func preset(_ name: String) throws -> GKNetConfiguration {
        var c = GKNetConfiguration()
        switch name {
        case "paper":
            break
        case "small":
            c.encoderWidths = [32, 64, 128, 256]
            c.decoderOutputWidth = 16
            c.lreWidth = 128
            c.lreDepth = 2
            c.lreHeads = 4
            c.scfAttentionWidth = 64
            c.scfHeads = 2
            c.scfSqueezeFloor = 16
        case "tiny":
            c.encoderWidths = [16, 32, 64, 128]
            c.decoderOutputWidth = 8
            c.lreWidth = 64
            c.lreDepth = 2
            c.lreHeads = 2
            c.scfAttentionWidth = 32
            c.scfHeads = 1
            c.scfSqueezeFloor = 8
        default:
            throw ConfigurationError("unknown preset \"\(name)\" (paper, small, tiny)")
        }
        return c
    }

    public static let presetNames = ["paper", "small", "tiny"]

    /// Kernel groups at a level of `channels` channels.
    public func kernelGroups(channels: Int) -> Int { max(channels / kernelGroupChannels, 1) }
    /// SCF gate bottleneck width at a level of `channels` channels.
    public func squeezeWidth(channels: Int) -> Int { max(channels / 4, scfSqueezeFloor) }
    /// The KPB levels, deepest first: [3, 2, 1] cut to `kernelLevels`.
    public var kernelLevelList: [Int] { Array([3, 2, 1].prefix(kernelLevels)) }
    /// Side of the positional-embedding grid.
    public var positionGrid: Int { inputSize / Self.encoderStride }

    /// Checks every constraint; errors name the field.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError(message) }
        }
        try require(encoderWidths.count == 4, "encoder_widths must have 4 entries, has \(encoderWidths.count)")
        try require(encoderWidths.allSatisfy { $0 > 0 && $0 <= 8192 }, "encoder_widths must be in 1...8192")
        try require(decoderOutputWidth > 0 && decoderOutputWidth <= 8192, "decoder_output_width must be in 1...8192")
        try require(kernelSize == 3 || kernelSize == 5, "kernel_size must be 3 or 5, is \(kernelSize)")
        try require((1...3).contains(kernelLevels), "kernel_levels must be 1, 2 or 3, is \(kernelLevels)")
        try require(kernelGroupChannels > 0, "kernel_group_channels must be positive")
        try require(
            lreWidth > 0 && lreHeads > 0 && lreWidth % lreHeads == 0,
            "lre_width \(lreWidth) must split over lre_heads \(lreHeads)")
        try require(lreDepth >= 0 && lreDepth <= 64, "lre_depth must be in 0...64")
        try require(lreMLPRatio > 0 && lreMLPRatio <= 16, "lre_mlp_ratio must be in 1...16")
        try require(
            scfAttentionWidth > 0 && scfHeads > 0 && scfAttentionWidth % scfHeads == 0,
            "scf_attention_width \(scfAttentionWidth) must split over scf_heads \(scfHeads)")
        try require(scfSqueezeFloor > 0, "scf_squeeze_floor must be positive")
        for c in encoderWidths.prefix(3) {
            try require(c % scfHeads == 0, "encoder width \(c) must split over scf_heads \(scfHeads)")
            try require(
                c % kernelGroups(channels: c) == 0,
                "encoder width \(c) must split into \(kernelGroups(channels: c)) kernel groups")
        }
        try require(scfTopK >= 0, "scf_top_k must be >= 0")
        try require(
            inputSize >= 16 && inputSize % Self.encoderStride == 0 && inputSize <= 4096,
            "input_size must be a multiple of 16 in 16...4096, is \(inputSize)")
        try require(
            imageMean.count == 3 && imageStd.count == 3 && imageStd.allSatisfy { $0 > 0 },
            "image_mean and image_std need 3 values (std > 0)")
    }
}

/// An invalid configuration.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
