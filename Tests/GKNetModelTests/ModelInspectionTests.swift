// ModelInspection (parameters and MACs per block, counted from the model and a traced forward) against
// Scripts/reference/count_macs.py
// (Tests/Fixtures/model_inspect/blocks.json) and the real model; MemoryStatistics and the measured
// forward peak; loading a checkpoint for `gknet inspect --model`.
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// Tests/Fixtures/model_inspect/blocks.json (Scripts/fixtures/model_inspect.py).
private struct InspectFixture: Decodable {
    struct Row: Decodable {
        var block: String
        var prefixes: [String]
        var parameters: Int
        var macs: Int
        var dynConvMACs: Int
        var flopCounterMACs: Int
        enum CodingKeys: String, CodingKey {
            case block, prefixes, parameters, macs
            case dynConvMACs = "dynconv_macs", flopCounterMACs = "flopcounter_macs"
        }
    }
    struct SCFRow: Decodable {
        var level: Int
        var parameters: Int
        var flopCounterMACs: Int
        enum CodingKeys: String, CodingKey {
            case level, parameters
            case flopCounterMACs = "flopcounter_macs"
        }
    }
    struct Total: Decodable {
        var parameters: Int
        var macs: Int
        var dynConvMACs: Int
        var flopCounterMACs: Int
        enum CodingKeys: String, CodingKey {
            case parameters, macs
            case dynConvMACs = "dynconv_macs", flopCounterMACs = "flopcounter_macs"
        }
    }
    struct Case: Decodable, CustomTestStringConvertible {
        var name: String
        var config: GKNetConfiguration
        var height: Int
        var width: Int
        var blocks: [Row]
        var scf: [SCFRow]
        var total: Total
        var testDescription: String { "\(name) at \(height)x\(width)" }
    }
    var cases: [Case]

    static let shared: InspectFixture = {
        let url = Fixtures.url("model_inspect/blocks.json")
        do {
            return try JSONDecoder().decode(InspectFixture.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path) (run `make fixtures`): \(error)")
        }
    }()
}

@Suite struct ModelInspectionTests {
    // MARK: Counts against count_macs.py

    @Test(arguments: InspectFixture.shared.cases)
    fileprivate func blocksMatchCountMacs(_ reference: InspectFixture.Case) throws {
        let inspection = try ModelInspection(
            configuration: reference.config, height: reference.height, width: reference.width)
        for row in reference.blocks {
            guard let block = inspection.topLevelBlocks.first(where: { $0.label == row.block }) else {
                #expect(
                    row.parameters == 0 && row.macs == 0 && row.dynConvMACs == 0,
                    "\(row.block) is missing but count_macs has it")
                continue
            }
            #expect(block.parameterPrefixes == row.prefixes, "\(row.block) prefixes")
            #expect(
                block.parameters == row.parameters, "\(row.block) parameters: \(block.parameters) vs \(row.parameters)")
            #expect(block.macs == row.macs, "\(row.block) MACs: \(block.macs) vs \(row.macs)")
            #expect(block.macs == row.flopCounterMACs, "\(row.block) MACs vs FlopCounterMode")
            #expect(
                block.dynConvMACs == row.dynConvMACs,
                "\(row.block) DynConv MACs: \(block.dynConvMACs) vs \(row.dynConvMACs)")
        }
        #expect(inspection.topLevelBlocks.count == reference.blocks.filter { $0.parameters > 0 || $0.macs > 0 }.count)
        let scfRows = inspection.blocks.filter { $0.partOf != nil }
        #expect(scfRows.map(\.id) == reference.scf.map { "S\($0.level)" })
        for row in reference.scf {
            let block = try #require(inspection["S\(row.level)"])
            #expect(block.partOf == "K\(row.level)")
            #expect(
                block.parameters == row.parameters,
                "SCF \(row.level) parameters: \(block.parameters) vs \(row.parameters)")
            #expect(
                block.macs == row.flopCounterMACs, "SCF \(row.level) MACs: \(block.macs) vs \(row.flopCounterMACs)")
        }
        #expect(inspection.totalParameters == reference.total.parameters)
        #expect(inspection.totalMACs == reference.total.macs)
        #expect(inspection.totalDynConvMACs == reference.total.dynConvMACs)
        #expect(inspection.totalMACs - inspection.totalDynConvMACs == reference.total.flopCounterMACs)
    }

    /// The numbers count_macs.py prints, and the design targets (docs/model.md) within 5 %, measured
    /// on what the Swift code computes: the real model's parameter count and the analytic MACs (not
    /// the literals above, which would only compare with each other).
    @Test(arguments: [
        ("paper", 18_732_287, 19_182_454_784, 18.73, 19.2),
        ("small", 4_310_849, 5_011_030_528, 4.31, 5.0),
        ("tiny", 1_089_042, 1_419_186_304, 1.09, 1.42),
    ])
    func presetTotals(name: String, parameters: Int, macs: Int, targetParameters: Double, targetGMAC: Double) throws {
        let configuration = try GKNetConfiguration.preset(name)
        let inspection = try ModelInspection(configuration: configuration)
        let modelParameters = try GKNet(configuration: configuration).parameterCount
        #expect(inspection.totalParameters == parameters)
        #expect(modelParameters == parameters)
        #expect(inspection.totalMACs == macs)
        #expect(
            abs(Double(modelParameters) / 1e6 / targetParameters - 1) < 0.05,
            "\(name): \(modelParameters) parameters, target \(targetParameters) M")
        #expect(
            abs(Double(inspection.totalMACs) / 1e9 / targetGMAC - 1) < 0.05,
            "\(name): \(inspection.totalMACs) MACs, target \(targetGMAC) G")
    }

    /// The per-block parameter counts equal the real model's `namedParameters()` grouped by prefix,
    /// and the analytic count the checkpoint guard uses (`GKNetConfiguration.parameterCount`) equals
    /// the model's, for the presets and every ablation configuration of the fixture.
    @Test func parameterCountsMatchTheRealModel() throws {
        var configurations = [try GKNetConfiguration.preset("small"), try GKNetConfiguration.preset("tiny")]
        configurations += InspectFixture.shared.cases.filter { $0.name.hasPrefix("tiny ") }.map(\.config)
        for configuration in configurations {
            let model = try GKNet(configuration: configuration)
            let inspection = try ModelInspection(model: model)
            let counted = inspection.parameterCounts(of: model)
            #expect(counted[""] == nil, "parameters outside every block: \(counted[""] ?? 0)")
            for block in inspection.blocks {
                #expect(
                    counted[block.id, default: 0] == block.parameters,
                    "\(block.label): \(counted[block.id, default: 0]) vs \(block.parameters) (\(configuration))"
                )
            }
            #expect(model.parameterCount == inspection.totalParameters)
            #expect(configuration.parameterCount == model.parameterCount, "the checkpoint guard's count")
        }
    }

    @Test func rejectsSizesThatAreNotMultiplesOf16() throws {
        let tiny = try GKNetConfiguration.preset("tiny")
        #expect(throws: ConfigurationError.self) { try ModelInspection(configuration: tiny, height: 72, width: 64) }
        #expect(throws: ConfigurationError.self) { try ModelInspection(configuration: tiny, height: 0, width: 64) }
    }

    @Test func tableHasEveryBlockAndTheTotals() throws {
        let inspection = try ModelInspection(configuration: try GKNetConfiguration.preset("paper"))
        let lines = inspection.table().split(separator: "\n").map(String.init)
        #expect(lines.count == 1 + 1 + inspection.blocks.count + 1 + 1)
        #expect(lines.last!.hasPrefix("total"))
        #expect(
            lines.last!.contains("18,732,287") && lines.last!.contains("19,182,454,784")
                && lines.last!.contains("16,515,072"))
        #expect(lines.contains { $0.hasPrefix("  SCF level 1 (in K1)") && $0.contains("1,019,222,016") })
        #expect(lines.contains { $0.hasPrefix("D1 decoder level 1") && $0.hasSuffix("9,437,184") })
        #expect(inspection.summary == "18.732 M parameters, 19.182 GMAC at 256x256")
        #expect(ModelInspection.grouped(1_234_567) == "1,234,567" && ModelInspection.grouped(999) == "999")
        #expect(ModelInspection.mebibytes(199_229_440) == "190.0 MiB")
    }

    // MARK: Memory

    @Test func threadPeakCountsTensorStorage() {
        let before = MemoryStatistics.currentThreadLiveBytes
        let (kept, peak) = MemoryStatistics.measurePeak { () -> Tensor in
            var a: Tensor? = Tensor.zeros([1000])  // 4,000 bytes
            let b = Tensor.zeros([10, 100])  // 4,000 bytes: 8,000 live
            a = nil
            let c = Tensor.zeros([500])  // 2,000 bytes: 6,000 live
            _ = a
            let (_, innerPeak) = MemoryStatistics.measurePeak { Tensor.zeros([250]).count }
            #expect(innerPeak == 1_000)
            _ = c
            return b
        }
        #expect(peak == 8_000)
        #expect(MemoryStatistics.currentThreadLiveBytes - before == 4_000)  // `kept` is still alive
        #expect(kept.count == 1_000)
        let (_, reshapePeak) = MemoryStatistics.measurePeak { kept.reshaped([1000]).count }
        #expect(reshapePeak == 4_000, "a reshaped copy counts in full")
    }

    @Test func processCountersSeeLargeTensors() {
        MemoryStatistics.resetPeak()
        let large = Tensor.zeros([4_000_000])  // 16 MB
        #expect(MemoryStatistics.liveBytes >= 16_000_000)
        #expect(MemoryStatistics.peakBytes >= 16_000_000)
        #expect(large.count == 4_000_000)
    }

    /// tiny at 64x64: the inference peak is repeatable, holds at least the full-resolution decoder
    /// map and the output, is below the training forward's, and the model is left as it was.
    @Test func forwardPeakOfTinyModel() throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("tiny"))
        model.eval()
        let runningMean = try #require(model.namedBuffers().first { $0.0.hasSuffix("running_mean") }?.1)
        let statistics = runningMean.data
        let inference = model.peakForwardBytes(height: 64, width: 64, training: false)
        let again = model.peakForwardBytes(height: 64, width: 64, training: false)
        let training = model.peakForwardBytes(height: 64, width: 64, training: true)
        #expect(inference == again)
        #expect(inference >= (8 + 3) * 64 * 64 * 4, "peak \(inference) below D0 + output")
        #expect(inference < 8 << 20)
        #expect(training > inference, "training \(training) vs inference \(inference)")
        #expect(!model.isTraining)
        #expect(runningMean.data == statistics, "running statistics changed")
    }

    // MARK: Checkpoints for `gknet inspect --model`

    @Test func loadsACheckpointWithItsConfiguration() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = try GKNetConfiguration.preset("tiny")
        configuration.kernelSize = 5
        let model = try GKNet(configuration: configuration, seed: 4)
        let url = directory.appendingPathComponent("tiny.safetensors")
        try Checkpoint.save(model, to: url, configuration: configuration)
        let loaded = try GKNet.load(checkpoint: url)
        #expect(loaded.configuration == configuration)
        #expect(loaded.namedParameters().map { $0.1.data } == model.namedParameters().map { $0.1.data })

        // Errors name the file and the problem.
        let missing = directory.appendingPathComponent("missing.safetensors")
        let missingError = #expect(throws: (any Error).self) { try GKNet.load(checkpoint: missing) }
        #expect("\(missingError!)".contains(missing.path))

        let bare = directory.appendingPathComponent("bare.safetensors")
        try Checkpoint.save(model, to: bare)
        let bareError = #expect(throws: CheckpointError.self) { try GKNet.load(checkpoint: bare) }
        #expect(bareError!.description.contains(bare.path) && bareError!.description.contains("gknet.config"))

        let wrong = directory.appendingPathComponent("wrong.safetensors")
        // k = 3, weights k = 5
        try Checkpoint.save(model, to: wrong, configuration: try GKNetConfiguration.preset("tiny"))
        let wrongError = #expect(throws: CheckpointError.self) { try GKNet.load(checkpoint: wrong) }
        #expect(wrongError!.description.contains(wrong.path) && wrongError!.description.contains("kernel_head"))

        // A configuration far larger than the weights in the file is refused before the model is
        // built (paper-sized metadata over tiny weights: ~40x the values the file holds).
        let inflated = directory.appendingPathComponent("inflated.safetensors")
        try Checkpoint.save(model, to: inflated, configuration: try GKNetConfiguration.preset("paper"))
        let inflatedError = #expect(throws: CheckpointError.self) { try GKNet.load(checkpoint: inflated) }
        #expect(
            inflatedError!.description.contains(inflated.path)
                && inflatedError!.description.contains("describes a model of"),
            "\(inflatedError!)")
    }
}
