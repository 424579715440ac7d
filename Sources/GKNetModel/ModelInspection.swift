// Size and cost of a GKNet, block by block (docs/model.md, "Layer by layer"): parameters and multiply-
// accumulates computed analytically from the configuration, exactly as
// Scripts/reference/count_macs.py counts them, and the measured peak tensor memory of a forward.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore

/// Parameters and MACs per named block of a GKNet at one input size.
///
/// MACs count convolutions (C_in * C_out * k^2 per output pixel, groups = 1), transposed
/// convolutions (C_in * C_out * k^2 per *input* pixel), linears, the attention matmuls (QK^T and
/// AV), the bicubic resize of the positional embedding (as two matmuls) and, separately, the
/// harmony-kernel DynConv (C * k^2 per pixel). Element-wise ops, norms, bilinear resizes and
/// softmax are not counted. Parameters are the trainable tensors (BatchNorm running statistics
/// are buffers, not parameters).
public struct ModelInspection: Sendable {
    /// One row of the table.
    public struct Block: Sendable, Equatable {
        /// Short id of docs/model.md "Layer by layer": E1..E4, L, K3..K1, S3..S1 (SCF, inside K3..K1), D4..D0, H.
        public var id: String
        /// What it is, e.g. "encoder stage 1".
        public var name: String
        /// `namedParameters()` prefixes that form the block.
        public var parameterPrefixes: [String]
        /// Trainable parameters.
        public var parameters: Int
        /// MACs of convolutions, linears and matmuls.
        public var macs: Int
        /// MACs of the harmony-kernel DynConv (decoder levels with kernel modulation).
        public var dynConvMACs: Int
        /// The block this one is part of (SCF rows: their KPB), nil for top-level blocks.
        public var partOf: String?

        /// `macs + dynConvMACs`.
        public var totalMACs: Int { macs + dynConvMACs }
        /// The label of count_macs.py's table: the id padded to two characters, then the name.
        public var label: String { (id.count < 2 ? id + " " : id) + " " + name }
    }

    public let configuration: GKNetConfiguration
    public let height: Int
    public let width: Int
    /// Top-level blocks in the order of docs/model.md "Layer by layer", each KPB followed by its SCF
    /// row (`partOf` set).
    public let blocks: [Block]

    /// Blocks that partition the model (the SCF rows left out).
    public var topLevelBlocks: [Block] { blocks.filter { $0.partOf == nil } }
    public var totalParameters: Int { topLevelBlocks.reduce(0) { $0 + $1.parameters } }
    /// All MACs, DynConv included.
    public var totalMACs: Int { topLevelBlocks.reduce(0) { $0 + $1.totalMACs } }
    public var totalDynConvMACs: Int { topLevelBlocks.reduce(0) { $0 + $1.dynConvMACs } }

    /// The block with this id, if the configuration has it.
    public subscript(id: String) -> Block? { blocks.first { $0.id == id } }

    /// Counts a configuration at `height` x `width` (multiples of 16).
    public init(configuration: GKNetConfiguration, height: Int = 256, width: Int = 256) throws {
        try configuration.validate()
        let stride = GKNetConfiguration.encoderStride
        guard height >= stride, width >= stride, height % stride == 0, width % stride == 0 else {
            throw ConfigurationError("input size \(height)x\(width) must be positive multiples of \(stride)")
        }
        self.configuration = configuration
        self.height = height
        self.width = width
        blocks = Self.count(configuration, height: height, width: width)
    }

    /// Counts a model's configuration at `height` x `width`.
    public init(model: GKNet, height: Int = 256, width: Int = 256) throws {
        try self.init(configuration: model.configuration, height: height, width: width)
    }

    /// The model's actual parameter counts, grouped like `blocks` (by `parameterPrefixes`); names
    /// that fall in no top-level block are listed under "" (there should be none).
    public func parameterCounts(of model: any Module) -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, tensor) in model.namedParameters() {
            var assigned = false
            for block in blocks where block.parameterPrefixes.contains(where: { name.hasPrefix($0 + ".") }) {
                result[block.id, default: 0] += tensor.count
                if block.partOf == nil { assigned = true }
            }
            if !assigned { result["", default: 0] += tensor.count }
        }
        return result
    }
}

// MARK: - The analytic count (mirror of count_macs.analytic_macs and of the module tree)

extension ModelInspection {
    private static func conv(_ input: Int, _ output: Int, _ k: Int, bias: Bool) -> Int {
        input * output * k * k + (bias ? output : 0)
    }

    private static func linear(_ input: Int, _ output: Int, bias: Bool = true) -> Int {
        input * output + (bias ? output : 0)
    }

    /// MACs of a convolution producing an `outputPixels` map.
    private static func convMACs(_ input: Int, _ output: Int, _ k: Int, outputPixels: Int) -> Int {
        input * output * k * k * outputPixels
    }

    /// MACs of a transposed convolution over an `inputPixels` map (each input pixel is scattered to k*k outputs).
    private static func convTransposeMACs(_ input: Int, _ output: Int, _ k: Int, inputPixels: Int) -> Int {
        input * output * k * k * inputPixels
    }

    private static func count(_ cfg: GKNetConfiguration, height: Int, width: Int) -> [Block] {
        let c = [4] + cfg.encoderWidths  // c[l] = C_l, c[0] = input channels
        func pixels(_ level: Int) -> Int { (height >> level) * (width >> level) }
        let d = cfg.lreWidth
        let (tokenHeight, tokenWidth) = (height >> 4, width >> 4)
        let tokens = tokenHeight * tokenWidth
        let k2 = cfg.kernelSize * cfg.kernelSize
        let batchNorm = { (channels: Int) in 2 * channels }
        var blocks: [Block] = []

        // E1..E4: Down (Conv4x4 s2, BN) + residual block (2 x Conv3x3, BN).
        for level in 1...4 {
            let (input, output) = (c[level - 1], c[level])
            blocks.append(
                Block(
                    id: "E\(level)", name: "encoder stage \(level)", parameterPrefixes: ["encoder.stages.\(level)"],
                    parameters: conv(input, output, 4, bias: false) + batchNorm(output) + 2
                        * (conv(output, output, 3, bias: false) + batchNorm(output)),
                    macs: convMACs(input, output, 4, outputPixels: pixels(level)) + 2
                        * convMACs(output, output, 3, outputPixels: pixels(level)),
                    dynConvMACs: 0))
        }

        // L: Conv1x1 C_4 -> D; positional embedding and transformer blocks when useLRE.
        var lreParameters = conv(c[4], d, 1, bias: true)
        var lreMACs = convMACs(c[4], d, 1, outputPixels: tokens)
        if cfg.useLRE {
            let grid = cfg.positionGrid
            let hidden = cfg.lreMLPRatio * d
            let perBlock = 2 * d + (3 * d * d + 3 * d) + linear(d, d) + 2 * d + linear(d, hidden) + linear(hidden, d)
            lreParameters += grid * grid * d + cfg.lreDepth * perBlock + 2 * d
            if tokenHeight != grid || tokenWidth != grid {
                // resize rows, then columns
                lreMACs += tokenHeight * grid * grid * d + tokenHeight * d * grid * tokenWidth
            }
            lreMACs +=
                cfg.lreDepth
                * (tokens * d * 3 * d  // in_proj
                    + 2 * tokens * tokens * d  // QK^T and AV, all heads
                    + tokens * d * d  // out_proj
                    + 2 * tokens * d * hidden)  // MLP
        }
        blocks.append(
            Block(
                id: "L", name: "LRE", parameterPrefixes: ["lre"], parameters: lreParameters, macs: lreMACs,
                dynConvMACs: 0))

        // K3..K1: up (Conv3x3, BN), merge (Conv1x1, BN), SCF or fuse, kernel head.
        var previous = d
        let a = cfg.scfAttentionWidth
        for level in cfg.kernelLevelList {
            let (cl, p) = (c[level], pixels(level))
            var parameters =
                conv(previous, cl, 3, bias: false) + batchNorm(cl) + conv(2 * cl, cl, 1, bias: false) + batchNorm(cl)
            var macs = convMACs(previous, cl, 3, outputPixels: p) + convMACs(2 * cl, cl, 1, outputPixels: p)
            var scf: Block?
            if cfg.useSCF {
                let z = cfg.squeezeWidth(channels: cl)
                let scfParameters =
                    conv(cl, a, 1, bias: true) + linear(d, a, bias: false) + linear(d, cl)
                    + conv(cl, cl, 1, bias: true) + linear(cl, z) + linear(z, 2 * cl)
                let scfMACs =
                    p * cl * a  // query
                    + tokens * d * a  // key
                    + tokens * d * cl  // value
                    + p * tokens * a  // logits
                    + p * tokens * cl  // A V
                    + p * cl * cl  // project
                    + cl * z + z * 2 * cl  // gate
                scf = Block(
                    id: "S\(level)", name: "SCF level \(level)", parameterPrefixes: ["kpb.\(level).scf"],
                    parameters: scfParameters, macs: scfMACs, dynConvMACs: 0, partOf: "K\(level)")
                parameters += scfParameters
                macs += scfMACs
            } else {
                parameters += conv(cl + d, cl, 1, bias: false) + batchNorm(cl)
                macs += convMACs(cl + d, cl, 1, outputPixels: p)
            }
            if cfg.useKernelModulation {
                let taps = cfg.kernelGroups(channels: cl) * k2
                parameters += conv(cl, cl, 3, bias: true) + conv(cl, taps, 1, bias: true)
                macs += convMACs(cl, cl, 3, outputPixels: p) + convMACs(cl, taps, 1, outputPixels: p)
            }
            blocks.append(
                Block(
                    id: "K\(level)", name: "KPB level \(level)", parameterPrefixes: ["kpb.\(level)"],
                    parameters: parameters, macs: macs, dynConvMACs: 0))
            if let scf { blocks.append(scf) }
            previous = cl
        }

        // D4: Conv1x1 (C_4 + D -> C_4), BN.
        blocks.append(
            Block(
                id: "D4", name: "decoder bottleneck", parameterPrefixes: ["decoder.bottleneck"],
                parameters: conv(c[4] + d, c[4], 1, bias: false) + batchNorm(c[4]),
                macs: convMACs(c[4] + d, c[4], 1, outputPixels: tokens), dynConvMACs: 0))
        // D3..D1: ConvT4x4 s2 + BN, Conv3x3 + BN, DynConv where kernels are predicted.
        for level in [3, 2, 1] {
            let (input, output) = (c[level + 1], c[level])
            let modulated = cfg.useKernelModulation && cfg.kernelLevelList.contains(level)
            blocks.append(
                Block(
                    id: "D\(level)", name: "decoder level \(level)", parameterPrefixes: ["decoder.levels.\(level)"],
                    parameters: conv(input, output, 4, bias: false) + batchNorm(output)
                        + conv(output, output, 3, bias: false) + batchNorm(output),
                    macs: convTransposeMACs(input, output, 4, inputPixels: pixels(level + 1))
                        + convMACs(output, output, 3, outputPixels: pixels(level)),
                    dynConvMACs: modulated ? output * k2 * pixels(level) : 0))
        }
        // D0: ConvT4x4 s2 + BN, Conv3x3 (bias).
        let d0 = cfg.decoderOutputWidth
        blocks.append(
            Block(
                id: "D0", name: "decoder level 0", parameterPrefixes: ["decoder.levels.0"],
                parameters: conv(c[1], d0, 4, bias: false) + batchNorm(d0) + conv(d0, d0, 3, bias: true),
                macs: convTransposeMACs(c[1], d0, 4, inputPixels: pixels(1))
                    + convMACs(d0, d0, 3, outputPixels: pixels(0)),
                dynConvMACs: 0))
        // H: Conv1x1 -> RGB, residual or affine transform (+ the learned blend's Conv1x1 -> 1).
        let learned = cfg.outputBlend == .learned
        let headChannels = cfg.output.channels
        blocks.append(
            Block(
                id: "H", name: "head (+ blend)", parameterPrefixes: ["head", "blend"],
                parameters: conv(d0, headChannels, 1, bias: true) + (learned ? conv(d0, 1, 1, bias: true) : 0),
                macs: convMACs(d0, headChannels, 1, outputPixels: pixels(0))
                    + (learned ? convMACs(d0, 1, 1, outputPixels: pixels(0)) : 0),
                dynConvMACs: 0))
        return blocks
    }
}

// MARK: - The table

extension ModelInspection {
    /// The per-block table with totals (percentages of the totals; SCF rows are part of their KPB).
    public func table() -> String {
        let totalP = Double(max(totalParameters, 1)), totalM = Double(max(totalMACs, 1))
        func percent(_ value: Int, _ total: Double) -> String { Self.fixed(100 * Double(value) / total, 1) + " %" }
        var rows: [[String]] = [["block", "parameters", "%", "MACs", "%", "of which DynConv"]]
        for block in blocks {
            let label = block.partOf.map { "  \(block.name) (in \($0))" } ?? block.label
            rows.append([
                label, Self.grouped(block.parameters), percent(block.parameters, totalP),
                Self.grouped(block.totalMACs), percent(block.totalMACs, totalM),
                block.dynConvMACs > 0 ? Self.grouped(block.dynConvMACs) : "",
            ])
        }
        rows.append([
            "total", Self.grouped(totalParameters), "100.0 %", Self.grouped(totalMACs), "100.0 %",
            Self.grouped(totalDynConvMACs),
        ])
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max()! }
        var lines = rows.map { row in
            row.enumerated().map { column, cell in
                column == 0
                    ? cell + String(repeating: " ", count: widths[0] - cell.count)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }
        lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
        lines.insert(String(repeating: "-", count: lines[0].count), at: lines.count - 1)
        return lines.joined(separator: "\n")
    }

    /// "18.732 M parameters, 19.182 GMAC at 256x256".
    public var summary: String {
        "\(Self.fixed(Double(totalParameters) / 1e6, 3)) M parameters, \(Self.fixed(Double(totalMACs) / 1e9, 3)) GMAC "
            + "at \(height)x\(width)"
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var result = self
        while result.last == " " { result.removeLast() }
        return result
    }
}

extension ModelInspection {
    /// 18732287 -> "18,732,287".
    public static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return value < 0 ? "-" + result : result
    }

    /// `value` with `decimals` digits after the point ("19.182").
    public static func fixed(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    /// Bytes as MiB with one decimal ("189.7 MiB").
    public static func mebibytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MiB" }
}

// MARK: - Measured peak tensor memory of a forward

extension GKNet {
    /// The peak bytes of tensor storage held during one forward of a `batch` x 4 x `height` x
    /// `width` input (`MemoryStatistics.measurePeak`: counted on the calling thread, parameters and
    /// the inputs excluded, the output included).
    ///
    /// - Parameter training: false: evaluation mode under `withoutGradient` (inference); true:
    ///   training mode with the autograd graph recorded, i.e. the peak just before `backward()`.
    ///   The model's mode and BatchNorm running statistics are restored afterwards.
    public func peakForwardBytes(batch: Int = 1, height: Int, width: Int, training: Bool, seed: UInt64 = 0) -> Int {
        var generator = SplitMix64(seed: seed)
        let composite = Tensor.uniform([batch, 3, height, width], generator: &generator)
        var maskValues = [Float](repeating: 0, count: batch * height * width)
        for n in 0..<batch {
            for y in (height / 4)..<(height / 2) {
                for x in (width / 4)..<(width / 2) { maskValues[(n * height + y) * width + x] = 1 }
            }
        }
        let mask = Tensor(shape: [batch, 1, height, width], data: maskValues)
        let wasTraining = isTraining
        let buffers = namedBuffers().map { ($0.1, $0.1.data) }
        defer {
            train(wasTraining)
            for (tensor, data) in buffers { tensor.data = data }
        }
        train(training)
        if training {
            return MemoryStatistics.measurePeak { _ = self(composite: composite, mask: mask) }.peakBytes
        }
        return MemoryStatistics.measurePeak { withoutGradient { _ = self(composite: composite, mask: mask) } }.peakBytes
    }
}
