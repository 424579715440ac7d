import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

/// A fresh empty folder under the temporary directory.
func temporaryFolder() throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("gknet-nn-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

struct TinyConfiguration: Codable, Equatable {
    var width: Int
    var name: String
}

@Suite struct CheckpointTests {
    @Test func roundTripInEveryDtype() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Encoder()
        source.stages[1].norm.weight.data = [0.1, -1.7, 3.14159]
        source.stages[0].conv.numBatchesTracked.data = [17]
        for dtype in [SafeTensorsDType.f32, .f16, .bf16] {
            let url = folder.appendingPathComponent("model-\(dtype.rawValue).safetensors")
            try Checkpoint.save(
                source, to: url, dtype: dtype, configuration: TinyConfiguration(width: 8, name: "t"), step: 12)
            let target = Encoder()
            let file = try Checkpoint.load(into: target, from: url)
            #expect(
                try Checkpoint.configuration(TinyConfiguration.self, in: file) == TinyConfiguration(width: 8, name: "t")
            )
            #expect(file.metadata[Checkpoint.stepKey] == "12" && file.metadata["format"] == "pt")
            #expect(file.tensors["stages.0.conv.num_batches_tracked"]?.dtype == .i64)
            #expect(target.stages[0].conv.numBatchesTracked.data == [17])
            let weights = target.stages[1].norm.weight.data
            switch dtype {
            case .f32: #expect(weights == [0.1, -1.7, 3.14159])
            case .f16: #expect(weights == [0.1, -1.7, 3.14159].map { Float(halfBits: Float($0).halfBits) })
            default:
                #expect(
                    weights == [0.1, -1.7, 3.14159].map { Float(bitPattern: UInt32(Float($0).bfloat16Bits) << 16) })
            }
        }
    }

    /// A value F16 cannot hold (a BatchNorm running variance of 3e5 was seen in a trained model) keeps
    /// its tensor in F32, exactly; every other tensor is still F16.
    @Test func valuesBeyondHalfPrecisionKeepTheirTensorInF32() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Encoder()
        source.stages[1].conv.runningMean.data = [3.29e5, -1.5, 65519]
        source.stages[0].norm.weight.data = [65504, -0.25]
        #expect(source.tensorsWidenedFromF16 == ["stages.1.conv.running_mean"])
        let state = source.stateDictionary(dtype: .f16)
        #expect(state["stages.1.conv.running_mean"]?.dtype == .f32)
        #expect(state["stages.0.bn.weight"]?.dtype == .f16 && state["head.weight"]?.dtype == .f16)
        #expect(state["stages.0.conv.num_batches_tracked"]?.dtype == .i64)
        let url = folder.appendingPathComponent("model.safetensors")
        try Checkpoint.save(source, to: url, dtype: .f16)
        let target = Encoder()
        try Checkpoint.load(into: target, from: url)
        #expect(target.stages[1].conv.runningMean.data == [3.29e5, -1.5, 65519])
        #expect(target.stages[0].norm.weight.data == [65504, -0.25])
        #expect(Float(halfBits: Float(65520).halfBits).isInfinite && !Float(halfBits: Float(65519).halfBits).isInfinite)
        #expect(Encoder().tensorsWidenedFromF16.isEmpty)
    }

    @Test func strictLoadingReportsEveryProblemAtOnceAndChangesNothing() throws {
        var state = Encoder().stateDictionary()
        state["stages.0.conv.weight"] = nil
        state["head.bias"] = nil
        state["extra.weight"] = NamedTensor(shape: [1], values: [1])
        state["stages.1.bn.weight"] = NamedTensor(shape: [4], values: [1, 2, 3, 4])
        state["stages.0.bn.bias"]!.values = [9, 9]
        let target = Encoder()
        do {
            try target.load(stateDictionary: state)
            Issue.record("strict load accepted a bad state")
        } catch let error as StateLoadError {
            #expect(error.missing == ["stages.0.conv.weight", "head.bias"])
            #expect(error.unexpected == ["extra.weight"])
            #expect(error.mismatched.map(\.name) == ["stages.1.bn.weight"])
            let text = "\(error)"
            for name in [
                "stages.0.conv.weight", "head.bias", "extra.weight", "stages.1.bn.weight (model [3], file [4])",
            ] {
                #expect(text.contains(name), "\(text)")
            }
        }
        #expect(target.stages[0].norm.bias!.data == [0.5, 0.5])
    }

    @Test func lenientLoadingSkipsMissingAndUnexpectedButNotMisShaped() throws {
        var state = Encoder().stateDictionary()
        state["head.bias"] = nil
        state["extra"] = NamedTensor(shape: [], values: [1])
        state["stages.0.bn.bias"]!.values = [9, 9]
        let target = Encoder()
        let report = try target.load(stateDictionary: state, strict: false)
        #expect(report.missing == ["head.bias"] && report.unexpected == ["extra"] && !report.isComplete)
        #expect(target.stages[0].norm.bias!.data == [9, 9])
        state["head.weight"] = NamedTensor(shape: [2], values: [1, 2])
        #expect(throws: StateLoadError.self) { try target.load(stateDictionary: state, strict: false) }
    }

    @Test func writesAreAtomicAndLeaveNoTemporaryFiles() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("model.safetensors")
        let model = Encoder()
        try Checkpoint.save(model, to: url)
        model.head.weight.data = [5, 6, 7, 8]
        try Checkpoint.save(model, to: url)  // replaces the old file
        let loaded = Encoder()
        try Checkpoint.load(into: loaded, from: url)
        #expect(loaded.head.weight.data == [5, 6, 7, 8])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
        let nowhere = folder.appendingPathComponent("missing/model.safetensors")
        #expect(throws: (any Error).self) { try Checkpoint.save(model, to: nowhere) }
    }
}

/// Save, reload, continue: 5 steps + checkpoint + restore into fresh objects + 5 steps must equal
/// 10 uninterrupted steps bit for bit.
@Suite struct ResumeTests {
    /// One training run over the elementwise test model, with data drawn from a seeded generator.
    final class Run {
        let model = Encoder()
        let optimizer: any Optimizer
        let scheduler: LearningRateScheduler
        var data = SplitMix64(seed: 99)
        var step = 0

        init(kind: String) {
            switch kind {
            case "SGD":
                optimizer = SGD(
                    parameters: model.namedParameters(), learningRate: 0.1, momentum: 0.9, weightDecay: 1e-3,
                    nesterov: true)
            case "Adam": optimizer = Adam(parameters: model.namedParameters(), weightDecay: 1e-3)
            default: optimizer = AdamW(parameters: model.namedParameters())
            }
            scheduler = LearningRateScheduler(
                schedule: WarmupCosineSchedule(baseLearningRate: 0.05, warmupSteps: 3, totalSteps: 10),
                optimizer: optimizer)
        }

        func train(steps: Int) {
            for _ in 0..<steps {
                optimizer.zeroGrad()
                var loss = Tensor(scalar: 0)
                for stage in model.stages {
                    let count = stage.conv.weight.count
                    let x = Tensor.uniform([3, count], low: -1, high: 1, generator: &data)
                    let target = Tensor.uniform([3, count], low: -1, high: 1, generator: &data)
                    let d = stage.norm(stage.conv(x)) - target
                    loss = loss + (d * d).sum()
                }
                let h = model.head(Tensor.uniform([4], generator: &data))
                loss = loss + (h * h).sum()
                loss.backward()
                clipGradientNorm(model.parameters(), maximumNorm: 2)
                optimizer.step()
                scheduler.step()
                step += 1
            }
        }

        func parameterBits() -> [String: [UInt32]] {
            Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.0, $0.1.data.map(\.bitPattern)) })
        }
    }

    @Test(arguments: ["SGD", "Adam", "AdamW"])
    func fivePlusFiveEqualsTen(kind: String) throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let uninterrupted = Run(kind: kind)
        uninterrupted.train(steps: 10)

        let first = Run(kind: kind)
        first.train(steps: 5)
        let url = folder.appendingPathComponent("train.safetensors")
        try TrainingCheckpoint.save(
            to: url, model: first.model, optimizer: first.optimizer, scheduler: first.scheduler,
            step: first.step, generators: ["data": first.data], configuration: TinyConfiguration(width: 4, name: kind))

        let resumed = Run(kind: kind)
        resumed.model.head.weight.data = [9, 9, 9, 9]  // proves the weights come from the file
        let (progress, file) = try TrainingCheckpoint.restore(
            from: url, model: resumed.model, optimizer: resumed.optimizer, scheduler: resumed.scheduler)
        #expect(progress.step == 5 && resumed.scheduler.position == 5)
        #expect(try Checkpoint.configuration(TinyConfiguration.self, in: file)?.name == kind)
        resumed.data = try #require(progress.generators["data"])
        resumed.step = progress.step
        resumed.train(steps: 5)
        #expect(resumed.parameterBits() == uninterrupted.parameterBits())
        #expect(resumed.optimizer.state == uninterrupted.optimizer.state)

        // A training checkpoint also loads as a plain model checkpoint.
        let plain = Encoder()
        try Checkpoint.load(into: plain, from: url)
        #expect(plain.head.weight.data == first.model.head.weight.data)
    }

    @Test func restoringIntoTheWrongOptimizerChangesNothing() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = Run(kind: "Adam")
        run.train(steps: 2)
        let url = folder.appendingPathComponent("train.safetensors")
        try TrainingCheckpoint.save(
            to: url, model: run.model, optimizer: run.optimizer, scheduler: run.scheduler, step: 2)
        let other = Run(kind: "SGD")
        let before = other.parameterBits()
        #expect(throws: CheckpointError.self) {
            try TrainingCheckpoint.restore(
                from: url, model: other.model, optimizer: other.optimizer, scheduler: other.scheduler)
        }
        #expect(other.parameterBits() == before && other.scheduler.position == 0)
        let plainURL = folder.appendingPathComponent("plain.safetensors")
        try Checkpoint.save(run.model, to: plainURL)
        #expect(throws: CheckpointError.self) {
            try TrainingCheckpoint.restore(from: plainURL, model: other.model, optimizer: other.optimizer)
        }
    }
}

/// The same resume check on a model made of real layers: convolution, BatchNorm (running
/// statistics and batch counts), GELU, Dropout (its generator travels in the checkpoint), pooling
/// and a linear head.
final class TinyNet: Module {
    let conv: Conv2d, norm: BatchNorm2d, dropout: Dropout, head: Linear
    var isTraining = true
    init(seed: UInt64) {
        var g = SplitMix64(seed: seed)
        conv = Conv2d(inputChannels: 3, outputChannels: 4, kernelSize: 3, padding: 1, generator: &g)
        norm = BatchNorm2d(channels: 4)
        dropout = Dropout(probability: 0.3, seed: seed &+ 1)
        head = Linear(inputFeatures: 4, outputFeatures: 2, generator: &g)
    }
    var members: [ModuleMember] {
        [.child("conv", conv), .child("bn", norm), .child("drop", dropout), .child("head", head)]
    }
    func callAsFunction(_ x: Tensor) -> Tensor {
        let features = dropout(norm(conv(x)).gelu())
        return head(adaptiveAvgPool2d(features, outputHeight: 1, outputWidth: 1).reshaped([x.shape[0], 4]))
    }
}

extension ResumeTests {
    final class LayerRun {
        let model: TinyNet
        let optimizer: AdamW
        let scheduler: LearningRateScheduler
        var data = SplitMix64(seed: 5)
        init(seed: UInt64) {
            model = TinyNet(seed: seed)
            optimizer = AdamW(parameters: model.namedParameters(), weightDecay: 0.05)
            scheduler = LearningRateScheduler(
                schedule: WarmupCosineSchedule(baseLearningRate: 1e-2, warmupSteps: 2, totalSteps: 10),
                optimizer: optimizer)
        }
        func train(steps: Int) {
            for _ in 0..<steps {
                optimizer.zeroGrad()
                let x = Tensor.normal([2, 3, 5, 5], generator: &data)
                let target = Tensor.normal([2, 2], generator: &data)
                let d = model(x) - target
                let loss = (d * d).mean()
                loss.backward()
                clipGradientNorm(model.parameters(), maximumNorm: 1)
                optimizer.step()
                scheduler.step()
            }
        }
        var stateBits: [String: [UInt32]] {
            Dictionary(uniqueKeysWithValues: model.stateEntries().map { ($0.name, $0.tensor.data.map(\.bitPattern)) })
        }
    }

    @Test func fivePlusFiveEqualsTenWithLayers() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let uninterrupted = LayerRun(seed: 1)
        uninterrupted.train(steps: 10)
        let first = LayerRun(seed: 1)
        first.train(steps: 5)
        let url = folder.appendingPathComponent("train.safetensors")
        try TrainingCheckpoint.save(
            to: url, model: first.model, optimizer: first.optimizer, scheduler: first.scheduler,
            step: 5, generators: ["data": first.data])
        let resumed = LayerRun(seed: 2)  // different initial weights and dropout seed
        let (progress, _) = try TrainingCheckpoint.restore(
            from: url, model: resumed.model, optimizer: resumed.optimizer, scheduler: resumed.scheduler)
        #expect(resumed.model.dropout.generator == first.model.dropout.generator)
        resumed.data = try #require(progress.generators["data"])
        resumed.train(steps: 5)
        #expect(resumed.stateBits == uninterrupted.stateBits)
        #expect(resumed.model.norm.numBatchesTracked.data == [10])
    }
}
