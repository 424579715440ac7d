// Size and cost of a GKNet, block by block (docs/model.md, "Layer by layer"), counted from the
// model itself: parameters from its modules, multiply-accumulates from one traced forward pass
// (CostTracer: every op reports its MACs from its geometry). Scripts/reference/count_macs.py counts
// the same numbers analytically and with PyTorch's FlopCounterMode (the tests compare). Also the
// measured peak tensor memory of a forward.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore

/// Parameters and MACs per named block of a GKNet at one input size.
///
/// MACs count convolutions (C_in/G * C_out * k^2 per output pixel), transposed convolutions
/// (C_in * C_out/G * k^2 per *input* pixel), linears, matmuls (the attention's QK^T and AV among
/// them), the fused token attention, the bicubic resize of the positional embedding (as the two
/// matmuls it is) and, separately, the harmony-kernel DynConv (C * k^2 per pixel). Element-wise
/// ops, norms, bilinear resizes and softmax are not counted. Parameters are the trainable tensors
/// (BatchNorm running statistics are buffers, not parameters).
public struct ModelInspection: Sendable {
    /// One row of the table.
    public struct Block: Sendable, Equatable {
        /// Short id of docs/model.md "Layer by layer": E1..E4, L, K3..K1, S3..S1 (SCF, inside K3..K1), D4..D0, H.
        public var id: String
        /// What it is, e.g. "encoder stage 1".
        public var name: String
        /// `namedParameters()` prefixes (module paths) that form the block.
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

        /// Whether the module or parameter at `path` belongs to this block.
        func contains(_ path: String) -> Bool {
            parameterPrefixes.contains { path == $0 || path.hasPrefix($0 + ".") }
        }
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

    /// Counts a freshly built model of `configuration` at `height` x `width` (multiples of 16).
    public init(configuration: GKNetConfiguration, height: Int = 256, width: Int = 256) throws {
        try Self.checkSize(height: height, width: width)
        try self.init(model: GKNet(configuration: configuration), height: height, width: width)
    }

    /// Counts `model` at `height` x `width`: its parameters, and the MACs of one batch-1 forward
    /// in evaluation mode without gradient recording (the model's mode is restored afterwards; the
    /// running statistics are not touched in evaluation mode).
    public init(model: GKNet, height: Int = 256, width: Int = 256) throws {
        try model.configuration.validate()
        try Self.checkSize(height: height, width: width)
        configuration = model.configuration
        self.height = height
        self.width = width
        blocks = Self.count(model, height: height, width: width)
    }

    private static func checkSize(height: Int, width: Int) throws {
        let stride = GKNetConfiguration.encoderStride
        guard height >= stride, width >= stride, height % stride == 0, width % stride == 0 else {
            throw ConfigurationError("input size \(height)x\(width) must be positive multiples of \(stride)")
        }
    }

    /// The model's actual parameter counts, grouped like `blocks` (by `parameterPrefixes`); names
    /// that fall in no top-level block are listed under "" (there should be none).
    public func parameterCounts(of model: any Module) -> [String: Int] {
        Self.parameterCounts(of: model, blocks: blocks)
    }

    private static func parameterCounts(of model: any Module, blocks: [Block]) -> [String: Int] {
        var result: [String: Int] = [:]
        for (name, tensor) in model.namedParameters() {
            var assigned = false
            for block in blocks where block.contains(name) {
                result[block.id, default: 0] += tensor.count
                if block.partOf == nil { assigned = true }
            }
            if !assigned { result["", default: 0] += tensor.count }
        }
        return result
    }
}

// MARK: - Counting from the model

extension ModelInspection {
    /// The blocks of docs/model.md "Layer by layer" that `model` has (by its module paths), in order.
    private static func blockLayout(of model: GKNet) -> [Block] {
        let paths = Set(model.namedModules().map(\.0))
        func block(_ id: String, _ name: String, _ prefixes: [String], partOf: String? = nil) -> Block {
            Block(
                id: id, name: name, parameterPrefixes: prefixes, parameters: 0, macs: 0, dynConvMACs: 0, partOf: partOf)
        }
        var blocks = (1...4).map { block("E\($0)", "encoder stage \($0)", ["encoder.stages.\($0)"]) }
        blocks.append(block("L", "LRE", ["lre"]))
        for level in [3, 2, 1] where paths.contains("kpb.\(level)") {
            blocks.append(block("K\(level)", "KPB level \(level)", ["kpb.\(level)"]))
            if paths.contains("kpb.\(level).scf") {
                blocks.append(block("S\(level)", "SCF level \(level)", ["kpb.\(level).scf"], partOf: "K\(level)"))
            }
        }
        blocks.append(block("D4", "decoder bottleneck", ["decoder.bottleneck"]))
        blocks += [3, 2, 1, 0].map { block("D\($0)", "decoder level \($0)", ["decoder.levels.\($0)"]) }
        blocks.append(block("H", "head (+ blend)", ["head", "blend"]))
        return blocks
    }

    /// Parameters from the modules, MACs from a traced forward, both grouped into the blocks.
    private static func count(_ model: GKNet, height: Int, width: Int) -> [Block] {
        var blocks = blockLayout(of: model)
        let parameters = parameterCounts(of: model, blocks: blocks)
        for index in blocks.indices { blocks[index].parameters = parameters[blocks[index].id, default: 0] }

        // Each op is charged to the module whose weight it applies, else to the innermost module
        // that declared a cost scope around it (attention products, DynConv, the resize).
        var owners: [ObjectIdentifier: String] = [:]
        for (path, module) in model.namedModules() { owners[ObjectIdentifier(module)] = path }
        for (name, tensor) in model.namedParameters() {
            owners[ObjectIdentifier(tensor)] = name.split(separator: ".").dropLast().joined(separator: ".")
        }
        var unassigned: [String] = []
        for entry in traceForward(model, height: height, width: width) {
            let path =
                entry.parameter.flatMap { owners[$0] } ?? entry.scopes.reversed().lazy.compactMap { owners[$0] }.first
            let matching = path.map { path in blocks.indices.filter { blocks[$0].contains(path) } } ?? []
            if matching.isEmpty { unassigned.append("\(entry.op) (\(path ?? "no module"))") }
            for index in matching {
                if entry.op == "applyPixelKernels" {
                    blocks[index].dynConvMACs += entry.macs
                } else {
                    blocks[index].macs += entry.macs
                }
            }
        }
        precondition(unassigned.isEmpty, "ModelInspection: MACs of ops outside every block: \(unassigned)")
        return blocks
    }

    /// The cost entries of one batch-1 inference forward at `height` x `width`.
    private static func traceForward(_ model: GKNet, height: Int, width: Int) -> [CostTracer.Entry] {
        let composite = Tensor(repeating: 0.5, shape: [1, 3, height, width])
        var maskValues = [Float](repeating: 0, count: height * width)
        for y in (height / 4)..<(height / 2) {
            for x in (width / 4)..<(width / 2) { maskValues[y * width + x] = 1 }
        }
        let mask = Tensor(shape: [1, 1, height, width], data: maskValues)
        let wasTraining = model.isTraining
        defer { model.train(wasTraining) }
        model.eval()
        return CostTracer.trace { withoutGradient { model(composite: composite, mask: mask) } }.entries
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
