// Training: overfitting a fixed batch, exact resume, and the errors reported before any work.
import Foundation
import GKNetDatasets
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

@testable import GKNetTraining

private let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples")

private func temporaryDirectory(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-tests-\(name)-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func smallRun(
    steps: Int = 6, replicas: Int = 1, weightAverageDecay: Double = 0, validationSplit: String = "test",
    validationInterval: Int = 0
) throws -> TrainingConfiguration {
    try TrainingConfiguration.decode(
        Data(
            """
            {"preset": "tiny", "input_size": 64, "batch_size": 2, "steps": \(steps),
             "validation_interval": \(validationInterval), "checkpoint_interval": 2, "log_interval": 100,
             "warmup_steps": 2, "seed": 3, "replicas": \(replicas),
             "weight_average_decay": \(weightAverageDecay), "validation_split": "\(validationSplit)"}
            """.utf8))
}

@Suite(.serialized) struct TrainerTests {
    @Test func lossDecreasesWhenOverfittingOneBatch() throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("tiny"), seed: 1)
        var generator = SplitMix64(seed: 2)
        let target = Tensor.uniform([2, 3, 64, 64], generator: &generator)
        var maskValues = [Float](repeating: 0, count: 2 * 64 * 64)
        for i in 0..<2 { for y in 16..<48 { for x in 16..<48 { maskValues[(i * 64 + y) * 64 + x] = 1 } } }
        let mask = Tensor(shape: [2, 1, 64, 64], data: maskValues)
        let composite = withoutGradient { target * 0.6 + 0.3 }  // foreground too bright and flat
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 2e-3)
        var losses: [Float] = []
        for _ in 0..<12 {
            model.zeroGrad()
            let loss = foregroundNormalizedMSE(
                output: model(composite: composite, mask: mask), target: target, mask: mask)
            loss.backward()
            optimizer.step()
            losses.append(loss.item)
        }
        #expect(losses.last! < 0.5 * losses.first!, "losses \(losses)")
    }

    /// With 2 replicas too (each step's batch split over two model copies on two threads), and with a
    /// weight average (saved in the checkpoint, validated at the end and kept as best.safetensors).
    @Test(arguments: [(1, 0.0), (2, 0.0), (1, 0.9)])
    func resumedRunEqualsUninterruptedRunBitForBit(replicas: Int, weightAverageDecay: Double) throws {
        // Validated (on the samples' training images) at steps 3 and 6, so that best.safetensors is kept
        // across the interruption.
        let configuration = try smallRun(
            replicas: replicas, weightAverageDecay: weightAverageDecay, validationSplit: "train", validationInterval: 3)
        let straight = temporaryDirectory("straight"), interrupted = temporaryDirectory("interrupted")
        defer {
            try? FileManager.default.removeItem(at: straight)
            try? FileManager.default.removeItem(at: interrupted)
        }
        let reference = try Trainer(
            configuration: configuration, dataset: samples, runDirectory: straight, resume: false)
        _ = try reference.run()

        let first = try Trainer(
            configuration: configuration, dataset: samples, runDirectory: interrupted, resume: false)
        var steps = 0
        let partial = try first.run(shouldStop: {
            steps += 1
            return steps >= 3
        })
        #expect(partial.interrupted && partial.lastStep == 3)
        let second = try Trainer(configuration: nil, dataset: samples, runDirectory: interrupted, resume: true)
        #expect(second.step == 3)
        let finished = try second.run()
        #expect(!finished.interrupted && finished.lastStep == 6)

        let expected = try TrainingHistory.read(from: straight.appendingPathComponent(RunDirectory.logFile)).entries.map
        {
            ($0.step, $0.loss?.bitPattern)
        }
        let actual = try TrainingHistory.read(from: interrupted.appendingPathComponent(RunDirectory.logFile)).entries
            .map {
                ($0.step, $0.loss?.bitPattern)
            }
        #expect(expected.count == 6)
        #expect(
            expected.map(\.0) == actual.map(\.0) && expected.map(\.1) == actual.map(\.1),
            "losses differ: \(expected) vs \(actual)")
        // And the final weights agree bit for bit.
        for file in [RunDirectory.lastCheckpoint, RunDirectory.bestCheckpoint] {
            let a = try SafeTensorsFile(contentsOf: straight.appendingPathComponent(file))
            let b = try SafeTensorsFile(contentsOf: interrupted.appendingPathComponent(file))
            #expect(a.tensors.count == b.tensors.count)
            for (name, tensor) in a.tensors {
                #expect(b.tensors[name]?.values == tensor.values, "\(file) \(name) differs")
            }
        }
        let last = try SafeTensorsFile(contentsOf: straight.appendingPathComponent(RunDirectory.lastCheckpoint))
        let averaged = last.tensors.keys.filter { $0.hasPrefix(TrainingCheckpoint.auxiliaryPrefix) }
        #expect(averaged.isEmpty == (weightAverageDecay == 0), "\(averaged.count) weight-average tensors")
        if weightAverageDecay > 0 {
            // best.safetensors holds the average, not the last weights.
            let best = try SafeTensorsFile(contentsOf: straight.appendingPathComponent(RunDirectory.bestCheckpoint))
            let name = "decoder.bottleneck.conv.weight"
            let average = last.tensors[TrainingCheckpoint.auxiliaryPrefix + WeightAverage.tensorPrefix + name]?.values
            #expect(best.tensors[name]?.values == average && average != last.tensors[name]?.values)
        }
    }

    /// Measured convolution backends (`ConvolutionTuning`): a run records its choices in
    /// convolution-plan.json, and a resumed run takes them from there (not from new measurements), so
    /// that it ends bit for bit where an uninterrupted run with the same choices ends. Every choice is
    /// set against the fixed rule, so a resume that ignored the file would run the other backend and
    /// round differently (checked below with a run on the fixed rule).
    @Test(.enabled(if: ConvolutionBackend.isOneDNNAvailable, "oneDNN is missing"))
    func resumedRunTakesTheRecordedConvolutionPlan() throws {
        let configuration = try smallRun()
        let folders = ["measured", "straight", "interrupted", "fixed"].map { temporaryDirectory($0) }
        defer { for folder in folders { try? FileManager.default.removeItem(at: folder) } }
        var reported: [String] = []
        func train(_ folder: URL, _ tuning: ConvolutionTuning, resume: Bool = false, stopAfter: Int? = nil) throws
            -> TrainingResult
        {
            try ConvolutionTuning.$current.withValue(tuning) {
                let trainer = try Trainer(
                    configuration: resume ? nil : configuration, dataset: samples, runDirectory: folder, resume: resume)
                var steps = 0
                return try trainer.run(
                    shouldStop: {
                        steps += 1
                        return stopAfter.map { steps >= $0 } ?? false
                    }, report: { reported.append($0) })
            }
        }
        func losses(_ folder: URL) throws -> [UInt32?] {
            try TrainingHistory.read(from: folder.appendingPathComponent(RunDirectory.logFile)).entries.map {
                $0.loss?.bitPattern
            }
        }
        func plan(_ folder: URL) throws -> ConvolutionTuning.Plan? { try RunDirectory(folder).readConvolutionPlan() }

        // A measuring run records every choice it made, with its times.
        let measuring = ConvolutionTuning(measuring: true)
        _ = try train(folders[0], measuring, stopAfter: 1)
        let measured = try #require(try plan(folders[0]))
        #expect(!measured.entries.isEmpty && measured == measuring.plan)
        #expect(measured.entries.allSatisfy { $0.winogradSeconds != nil && $0.oneDNNSeconds != nil })
        let onOneDNN = measured.entries.filter { $0.choice == .oneDNN }.count
        let line =
            "convolution backends measured for \(measured.entries.count) training geometries: \(onOneDNN) on oneDNN"
        #expect(reported.filter { $0.hasPrefix(line) }.count == 1, "\(reported)")
        reported = []

        // Every choice the opposite of the fixed rule's (`WinogradPolicy`; it differs between processors).
        let forced = ConvolutionTuning.Plan(
            entries: measured.entries.map { entry in
                .init(key: entry.key, choice: WinogradPolicy.sendsToOneDNN(entry.key.geometry) ? .winograd : .oneDNN)
            })
        func adopting(_ plan: ConvolutionTuning.Plan) -> ConvolutionTuning {
            let tuning = ConvolutionTuning(measuring: false)
            tuning.adopt(plan)
            return tuning
        }
        _ = try train(folders[1], adopting(forced))
        let partial = try train(folders[2], adopting(forced), stopAfter: 3)
        #expect(partial.interrupted && partial.lastStep == 3)
        #expect(try plan(folders[2]) == forced)
        let resumedTuning = ConvolutionTuning(measuring: false)
        let finished = try train(folders[2], resumedTuning, resume: true)
        #expect(!finished.interrupted && finished.lastStep == 6)
        #expect(resumedTuning.plan == forced)
        #expect(!reported.contains { $0.hasPrefix("convolution backends measured") }, "adopted choices were reported")
        #expect(try losses(folders[2]) == (try losses(folders[1])), "the resumed run's losses differ")
        let straight = try SafeTensorsFile(contentsOf: folders[1].appendingPathComponent(RunDirectory.lastCheckpoint))
        let resumed = try SafeTensorsFile(contentsOf: folders[2].appendingPathComponent(RunDirectory.lastCheckpoint))
        let differing = straight.tensors.keys.sorted().filter {
            resumed.tensors[$0]?.values != straight.tensors[$0]?.values
        }
        #expect(differing.isEmpty, "\(differing.count) tensors differ: \(differing.prefix(3).joined(separator: ", "))")
        // The plan matters: the fixed rule's run rounds differently.
        _ = try train(folders[3], ConvolutionTuning(measuring: false))
        #expect(try losses(folders[3]) != (try losses(folders[1])), "the forced plan changed nothing")
    }

    /// The average follows average += (1 - d_n)(value - average) with d_n = min(decay, (1 + n) / (10 + n)),
    /// integer buffers take their value, `withAverage` puts the model's own values back bit for bit, and
    /// the checkpoint state restores the same average.
    @Test func weightAverageFollowsItsFormulaAndRoundTrips() throws {
        let model = BatchNorm2d(channels: 3)
        let decay = 0.5
        let average = WeightAverage(model: model, decay: decay)
        var expected = model.runningMean.data.map(Double.init)
        var generator = SplitMix64(seed: 9)
        for n in 0..<4 {
            let values = Tensor.uniform([3], low: -2, high: 2, generator: &generator).data
            model.runningMean.data = values
            model.numBatchesTracked.data = [Float(n + 1)]
            let weight = 1 - min(decay, Double(1 + n) / Double(10 + n))  // 0.9, 0.82, 0.75, 0.5 (capped)
            #expect(Double(average.currentWeight) == Double(Float(weight)))
            average.update(from: model)
            expected = zip(expected, values).map { $0 + weight * (Double($1) - $0) }
        }
        let own = model.stateEntries().map { $0.tensor.data }
        let seen = average.withAverage(in: model) { (model.runningMean.data, model.numBatchesTracked.data) }
        for (value, reference) in zip(seen.0, expected) { #expect(abs(Double(value) - reference) < 1e-6) }
        #expect(seen.1 == [4], "an integer buffer takes its current value")
        #expect(model.stateEntries().map { $0.tensor.data } == own, "the model's own values are back")

        let state = average.checkpointState(of: model)
        let file = SafeTensorsFile(
            tensors: Dictionary(
                uniqueKeysWithValues: state.tensors.map { (TrainingCheckpoint.auxiliaryPrefix + $0.key, $0.value) }),
            metadata: state.metadata)
        let restored = WeightAverage(model: model, decay: decay)
        try restored.restore(from: file, model: model, source: "test")
        #expect(restored.updates == 4)
        let exported = weightAverageState(in: file)  // what `gknet export --weight-average` loads
        #expect(exported?["running_mean"]?.values == seen.0 && exported?.count == model.stateEntries().count)
        #expect(weightAverageState(in: SafeTensorsFile(tensors: [:], metadata: [:])) == nil)
        #expect(restored.withAverage(in: model) { model.runningMean.data } == seen.0)
        #expect(throws: TrainingError.self) {
            try restored.restore(from: SafeTensorsFile(tensors: [:], metadata: [:]), model: model, source: "test")
        }
    }

    /// The replicated step leaves in the model the mean of the gradients of its parts, each computed
    /// as a single-threaded pass of the model on that part alone, and its replicas take the updated weights.
    @Test func replicasAverageTheGradientsOfTheirParts() throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("tiny"), seed: 4)
        var generator = SplitMix64(seed: 5)
        let composite = Tensor.uniform([4, 3, 32, 32], generator: &generator)
        let target = Tensor.uniform([4, 3, 32, 32], generator: &generator)
        let mask = Tensor(shape: [4, 1, 32, 32], data: (0..<(4 * 32 * 32)).map { $0 % 32 < 16 ? 1 : 0 })
        func partLoss(_ network: GKNet, _ part: Int, of parts: Int) -> Tensor {
            let slice = { ReplicatedTrainingStep.slice($0, part: part, of: parts) }
            return foregroundNormalizedMSE(
                output: network(composite: slice(composite), mask: slice(mask)), target: slice(target),
                mask: slice(mask))
        }
        // The reference: each half on its own, one after the other, single-threaded like a replica.
        var expected: [[Float]] = []
        var expectedLoss: Float = 0
        for part in 0..<2 {
            model.train()
            model.zeroGrad()
            let loss = Threading.$perThreadLimit.withValue(1) {
                withBLASOnCallingThread { partLoss(model, part, of: 2) }
            }
            Threading.$perThreadLimit.withValue(1) { withBLASOnCallingThread { loss.backward() } }
            expectedLoss += loss.item / 2
            let gradients = model.parameters().map { $0.grad ?? [] }
            expected = expected.isEmpty ? gradients : zip(expected, gradients).map { zip($0, $1).map { $0 + $1 } }
        }
        expected = expected.map { $0.map { $0 * 0.5 } }
        let step = try ReplicatedTrainingStep(model: model, count: 2)
        let loss = step.lossAndGradients { replica, part in partLoss(replica, part, of: 2) }
        #expect(loss == expectedLoss)
        let actual = model.parameters().map { $0.grad ?? [] }
        #expect(actual.count == expected.count && actual.allSatisfy { !$0.isEmpty })
        for (index, (a, e)) in zip(actual, expected).enumerated() {
            #expect(a == e, "parameter \(index): the replicated gradient differs from the mean of the parts'")
        }
        let before = model.parameters().map(\.data)
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-3)
        optimizer.step()
        step.shareWeights()
        let copy = step.replicas[1].parameters()
        #expect(zip(model.parameters(), copy).allSatisfy { $0.data == $1.data })
        #expect(zip(model.parameters(), before).contains { $0.data != $1 })  // the step moved the weights
    }

    /// A background prefetch only when the replicas leave a kernel thread free: with one replica per
    /// thread it would take its core time from a replica (docs/benchmarks.md, "The loader between steps").
    @Test(arguments: [1, 2, 0]) func loaderPrefetchesOnlyWhenAThreadIsLeftForIt(replicas: Int) throws {
        let directory = temporaryDirectory("prefetch")
        defer { try? FileManager.default.removeItem(at: directory) }
        let trainer = try Trainer(
            configuration: try smallRun(replicas: replicas), dataset: samples, runDirectory: directory, resume: false)
        // replicas 0: one per thread, up to the batch of 2
        let used = replicas > 0 ? replicas : min(Threading.count, 2)
        #expect(trainer.loader.options.prefetch == (used < Threading.count), "threads \(Threading.count)")
    }

    @Test func colorJitterKeyReachesTheAugmentation() throws {
        #expect(try TrainingConfiguration.decode(Data("{}".utf8)).trainingAugmentation(size: 64).colorJitter == nil)
        let on = try TrainingConfiguration.decode(Data(#"{"color_jitter": 0.8}"#.utf8))
        #expect(on.trainingAugmentation(size: 64).colorJitter == GlobalColorJitter(probability: 0.8))
        let written = try JSONEncoder().encode(on)
        #expect(try TrainingConfiguration.decode(written) == on)
    }

    @Test func backgroundShiftKeyReachesTheAugmentation() throws {
        #expect(try TrainingConfiguration.decode(Data("{}".utf8)).trainingAugmentation(size: 64).backgroundShift == nil)
        let on = try TrainingConfiguration.decode(Data(#"{"background_shift": 0.3}"#.utf8))
        #expect(on.trainingAugmentation(size: 64).backgroundShift == GlobalColorJitter(probability: 0.3))
        #expect(try TrainingConfiguration.decode(try JSONEncoder().encode(on)) == on)
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"background_shift": -0.1}"#.utf8))
        }
    }

    @Test func unknownConfigKeyIsAnError() {
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"learning_rat": 0.1}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) { try TrainingConfiguration.decode(Data(#"{"batch_size": 0}"#.utf8)) }
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"batch_size": 6, "replicas": 4}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"replicas": 2, "sync_batch_norm": true}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) { try TrainingConfiguration.decode(Data(#"{"preset": "huge"}"#.utf8)) }
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"color_jitter": 1.5}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) {
            try TrainingConfiguration.decode(Data(#"{"batch_size": "8"}"#.utf8))
        }
        #expect(throws: ConfigurationError.self) { try TrainingConfiguration.decode(Data("not json".utf8)) }
        // a fraction where a whole number is expected: Foundation's decoder gives no key; ours says what
        for text in [#"{"steps": 1.5}"#, #"{"synthesis": {"photos": "p", "masks": "m", "cache_megabytes": 0.5}}"#] {
            let error = #expect(throws: ConfigurationError.self) { try TrainingConfiguration.decode(Data(text.utf8)) }
            #expect(error?.description.contains("whole number") == true, "\(text)")
        }
    }

    @Test func runDirectoryHoldingAnotherRunNeedsResume() throws {
        let directory = temporaryDirectory("occupied")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try Trainer(configuration: try smallRun(), dataset: samples, runDirectory: directory, resume: false)
        do {
            _ = try Trainer(
                configuration: try smallRun(steps: 9), dataset: samples, runDirectory: directory, resume: false)
            Issue.record("a second run in the same directory was accepted")
        } catch let error as TrainingError {
            #expect(error.description.contains("--resume"))
        }
        // Resuming before the first checkpoint (a run killed early) restarts at step 0 with the saved config.
        #expect(try Trainer(configuration: nil, dataset: samples, runDirectory: directory, resume: true).step == 0)
        // Resuming where no run was ever started is an error.
        let empty = temporaryDirectory("never-started")
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(throws: TrainingError.self) {
            try Trainer(configuration: nil, dataset: samples, runDirectory: empty, resume: true)
        }
    }

    @Test func emptyDatasetIsAnErrorBeforeTraining() throws {
        let empty = temporaryDirectory("empty-dataset")
        let directory = temporaryDirectory("empty-run")
        defer {
            try? FileManager.default.removeItem(at: empty)
            try? FileManager.default.removeItem(at: directory)
        }
        #expect(throws: (any Error).self) {
            try Trainer(configuration: try smallRun(), dataset: empty, runDirectory: directory, resume: false)
        }
        #expect(
            !FileManager.default.fileExists(atPath: directory.appendingPathComponent(RunDirectory.lastCheckpoint).path))
    }

    @Test func checkpointOfAnotherPresetIsRejected() throws {
        let tinyRun = temporaryDirectory("tiny-run"), smallRunDirectory = temporaryDirectory("small-run")
        defer {
            try? FileManager.default.removeItem(at: tinyRun)
            try? FileManager.default.removeItem(at: smallRunDirectory)
        }
        let trainer = try Trainer(
            configuration: try smallRun(steps: 1), dataset: samples, runDirectory: tinyRun, resume: false)
        _ = try trainer.run()
        var small = try smallRun(steps: 1)
        small.preset = "small"
        _ = try Trainer(configuration: small, dataset: samples, runDirectory: smallRunDirectory, resume: false)
        try FileManager.default.copyItem(
            at: tinyRun.appendingPathComponent(RunDirectory.lastCheckpoint),
            to: smallRunDirectory.appendingPathComponent(RunDirectory.lastCheckpoint))
        #expect(throws: TrainingError.self) {
            try Trainer(configuration: nil, dataset: samples, runDirectory: smallRunDirectory, resume: true)
        }
    }
}

/// log.jsonl keeps its format: what older runs wrote still reads, and a rewrite (on resume) gives
/// the same bytes; the loss reads back bit for bit.
@Suite struct TrainingLogTests {
    @Test func linesKeepTheirFormatAndLossesReadBackExactly() throws {
        let loss = Float(bitPattern: 0x3C61_A3F7)
        let step = TrainingLogRecord.training(step: 12, loss: loss, learningRate: 0.001, imagesPerSecond: 3.4149)
        #expect(step.jsonLine == "{\"step\":12,\"loss\":\(loss.description),\"lr\":0.001,\"images_per_second\":3.41}")
        let validation = TrainingLogRecord.validation(
            step: 12, metrics: .init(mse: 41.25, fmse: 380.5, psnr: 33.875, count: 100))
        #expect(
            validation.jsonLine
                == "{\"step\":12,\"validation\":{\"mse\":41.25,\"fmse\":380.5,\"psnr\":33.875,\"count\":100}}")

        let folder = temporaryDirectory("log")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let url = folder.appendingPathComponent("log.jsonl")
        let old = """
            {"step":1,"loss":0.25,"lr":0.001,"images_per_second":2.50}
            {"step":2,"loss":\(loss.description),"lr":0.001,"images_per_second":3.41}
            {"step":2,"validation":{"mse":41.25,"fmse":380.5,"psnr":33.875,"count":100}}
            {"step":3,"loss":0.125}
            {"step":4,"loss":0.1
            """
        try Data(old.utf8).write(to: url)
        let history = try TrainingHistory.read(from: url)
        #expect(history.entries.map(\.step) == [1, 2, 3] && history.validations.map(\.step) == [2])
        #expect(history.entries[1].loss?.bitPattern == loss.bitPattern)
        #expect(history.entries[2].learningRate == nil && history.entries[2].imagesPerSecond == nil)

        try TrainingHistory.read(from: url, upToStep: 2).write(to: url)
        let rewritten = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        #expect(rewritten == old.split(separator: "\n").prefix(3).map { $0 + "\n" }.joined())
    }
}
