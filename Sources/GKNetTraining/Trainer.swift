import Foundation
// `gknet train`: a resumable training run in a run directory. The directory holds the resolved
// configuration (config.json), a JSONL log (log.jsonl), the latest training checkpoint
// (last.safetensors: model, optimizer, schedule position, data position) and the best model by
// validation fMSE (best.safetensors), and a plot of the curves (plot.png). A resumed run continues
// exactly: its losses equal an uninterrupted run's bit for bit at the same thread count.
//
// Under mpirun (Communicator.world has several ranks) the run is data-parallel: every rank trains
// on its slice of each global batch, the gradients are averaged with one allreduce per step, and
// every rank keeps identical weights; rank 0 alone reads and writes the run directory and sends
// the configuration and checkpoint to the others (docs/scaling.md).
import GKNetDataParallel
import GKNetDatasets
import GKNetEvaluation
import GKNetImageCodec
import GKNetInference
import GKNetModel
import GKNetNeuralNet
import GKNetSynthesis
import GKNetTensorCore

/// Errors that stop a run before (or while) it works; each names the file and the problem.
public struct TrainingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a finished (or interrupted) run did.
public struct TrainingResult: Sendable {
    public var firstStep: Int
    public var lastStep: Int
    public var totalSteps: Int
    public var interrupted: Bool
    public var bestValidationFMSE: Double?
}

public final class Trainer {
    public let configuration: TrainingConfiguration
    public let runDirectory: URL
    public let model: GKNet
    public let totalSteps: Int
    public private(set) var step = 0
    /// The processes of this run (a job of one outside mpirun).
    public let communicator: Communicator
    let optimizer: Adam
    let scheduler: LearningRateScheduler
    let loader: BatchLoader
    let validation: HarmonizationDataset?
    var bestValidationFMSE: Double?
    var smoothedLoss: Double?
    var history = TrainingHistory()
    /// What this run trains and validates on (checked between ranks and against a resumed checkpoint).
    public let dataFingerprint: DataFingerprint
    /// Whether a resume may continue on data other than the checkpoint's (`--allow-other-data`).
    let allowsOtherData: Bool
    /// Set when a resume continued on other data on purpose: what differs (reported when the run starts).
    var otherDataNote: String?

    public static let configurationFile = "config.json"
    public static let logFile = "log.jsonl"
    public static let lastCheckpoint = "last.safetensors"
    public static let bestCheckpoint = "best.safetensors"
    public static let plotFile = "plot.png"
    static let loaderKey = "gknet.loader"
    static let trainerKey = "gknet.trainer"
    /// The checkpoint's `DataFingerprint` (counts and digests).
    public static let dataKey = "gknet.data"

    /// Prepares a run; every configuration, dataset and run-directory problem is reported here,
    /// before any training work.
    /// - Parameters:
    ///   - configuration: the run's settings (nil with `resume`: read from the run directory).
    ///   - dataset: an iHarmony4 root or one subset folder: its train split is trained on (unless the
    ///     configuration has a `synthesis` section) and its test split validates (unless
    ///     `validation_dataset` names another).
    ///   - resume: continue from `last.safetensors` in `runDirectory`.
    ///   - communicator: the ranks of a data-parallel run (`.world`: those of mpirun, or this
    ///     process alone). Every rank must construct its trainer with the same arguments; the ranks
    ///     compare their configurations and data (`DataFingerprint`) and all throw
    ///     `RankDisagreement` when any differs.
    ///   - allowOtherData: let a resume continue on data other than the checkpoint's (else an error).
    public init(
        configuration requested: TrainingConfiguration?, dataset: URL?, runDirectory: URL, resume: Bool,
        communicator: Communicator = .world, allowOtherData: Bool = false
    ) throws {
        self.communicator = communicator
        allowsOtherData = allowOtherData
        let configuration =
            communicator.isDistributed
            ? try Self.sharedConfiguration(requested, runDirectory: runDirectory, resume: resume, communicator)
            : try Self.resolvedConfiguration(requested, runDirectory: runDirectory, resume: resume)
        guard configuration.batchSize % communicator.size == 0 else {
            throw TrainingError(
                "batch_size \(configuration.batchSize) does not split over \(communicator.size) processes: use a "
                    + "multiple of \(communicator.size)"
            )
        }
        self.configuration = configuration
        self.runDirectory = runDirectory
        if configuration.threads > 0 { Threading.configure(threads: configuration.threads) }
        let training = try Self.trainingData(configuration, dataset: dataset)
        validation = try Self.validationSet(configuration, dataset: dataset)
        // A rank given another --config than rank 0's would silently train with rank 0's: compare what it was given.
        dataFingerprint = try DataFingerprint(
            configuration: requested ?? configuration, training: training.source, validation: validation)
        try dataFingerprint.checkAgreement(communicator)
        model = try GKNet(configuration: try configuration.modelConfiguration(), seed: configuration.seed)
        if !resume, let initialWeights = configuration.initialWeights {
            try Self.loadInitialWeights(into: model, from: URL(fileURLWithPath: initialWeights))
        }
        let totalSteps = configuration.totalSteps(batchesPerEpoch: training.source.count / configuration.batchSize)
        self.totalSteps = totalSteps
        loader = Self.makeLoader(
            configuration, training: training, totalSteps: totalSteps,
            part: try DatasetShard(index: communicator.rank, count: communicator.size))
        optimizer = Self.makeOptimizer(configuration, parameters: model.namedParameters())
        scheduler = LearningRateScheduler(
            schedule: configuration.learningRateSchedule(totalSteps: totalSteps), optimizer: optimizer)
        if communicator.isDistributed && configuration.syncBatchNorm {
            for case let (_, norm as BatchNorm2d) in model.namedModules() {
                norm.crossProcessSum = { [communicator] in communicator.sumInPlace($0) }
            }
        }
        try prepareRunDirectory(resume: resume)
        if communicator.isDistributed { broadcastModelState() }
    }

    /// Fine-tuning start: the weights of `url` (its configuration must be the run's, input size aside).
    static func loadInitialWeights(into model: GKNet, from url: URL) throws {
        let source: GKNet
        do { source = try GKNet.load(checkpoint: url) } catch {
            throw TrainingError("initial_weights: \(error)")
        }
        var expected = model.configuration, found = source.configuration
        expected.inputSize = 0
        found.inputSize = 0
        guard expected == found else {
            throw TrainingError(
                "initial_weights \(url.path): its model configuration differs from this run's (preset, output "
                    + "head or widths); use the same model settings as the file's `gknet inspect --model`")
        }
        _ = try model.load(stateDictionary: source.stateDictionary(), strict: true)
    }

    /// The configuration of a data-parallel run: resolved by rank 0 (which alone reads the run
    /// directory) and sent to every rank.
    static func sharedConfiguration(
        _ requested: TrainingConfiguration?, runDirectory: URL, resume: Bool, _ communicator: Communicator
    ) throws -> TrainingConfiguration {
        var encoded = Data()
        if communicator.isRoot {
            let configuration = try resolvedConfiguration(requested, runDirectory: runDirectory, resume: resume)
            encoded = try JSONEncoder().encode(configuration)
        }
        // A rank 0 that threw above ends the job (the command aborts it), so the others never wait here alone.
        encoded = communicator.broadcast(encoded)
        let configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: encoded)
        try configuration.validate()
        return configuration
    }

    /// Makes every rank's parameters and buffers rank 0's (at the start and after a resume; also
    /// before validation and checkpoints, since per-rank batch norm leaves each rank its own
    /// running statistics).
    func broadcastModelState(buffersOnly: Bool = false) {
        let tensors = (buffersOnly ? [] : model.namedParameters().map(\.1)) + model.namedBuffers().map(\.1)
        var flat = tensors.flatMap(\.data)
        flat.withUnsafeMutableBufferPointer { communicator.broadcast($0) }
        var offset = 0
        for tensor in tensors {
            tensor.data = Array(flat[offset..<offset + tensor.count])
            offset += tensor.count
        }
    }

    /// The run's configuration: the requested one for a new run (checked against an existing run
    /// directory), the saved one to resume; validated.
    static func resolvedConfiguration(_ requested: TrainingConfiguration?, runDirectory: URL, resume: Bool) throws
        -> TrainingConfiguration
    {
        let configURL = runDirectory.appendingPathComponent(configurationFile)
        let existing: TrainingConfiguration? =
            FileManager.default.fileExists(atPath: configURL.path)
            ? try TrainingConfiguration.load(from: configURL) : nil
        let configuration: TrainingConfiguration
        if resume {
            guard let existing else {
                throw TrainingError(
                    "\(runDirectory.path): nothing to resume (no \(configurationFile)); start without --resume")
            }
            if let requested, requested != existing {
                throw TrainingError(
                    "\(configURL.path): the run was started with another configuration; resume without --config or "
                        + "use a new --run-dir"
                )
            }
            // Without last.safetensors (killed before the first checkpoint) the run restarts at step 0.
            configuration = existing
        } else {
            if existing != nil {
                throw TrainingError(
                    "\(configURL.path): the run directory already holds a run; pass --resume to continue it, or "
                        + "choose a new --run-dir"
                )
            }
            configuration = requested ?? TrainingConfiguration()
        }
        try configuration.validate()
        return configuration
    }

    /// What the run trains on: fresh composites of the `synthesis` photos, or the dataset's train split.
    struct TrainingData {
        var source: any SampleSource
        /// Set for fresh composites: the transform that makes them (its crop is set per step).
        var freshComposites: FreshCompositeTransform?
    }

    static func trainingData(_ configuration: TrainingConfiguration, dataset: URL?) throws -> TrainingData {
        let data: TrainingData
        if let synthesis = configuration.synthesis {
            let photos = try PhotoCollection(settings: synthesis)
            data = TrainingData(
                source: photos,
                freshComposites: FreshCompositeTransform(
                    crop: TrainingAugmentation(), synthesizer: synthesis.synthesizer, references: photos.statistics,
                    globalChangeProbability: Float(synthesis.globalChangeProbability),
                    regionMaskProbability: Float(synthesis.regionMaskProbability)))
        } else {
            guard let dataset else {
                throw TrainingError(
                    "nothing to train on: pass --dataset, or --photos and --masks (or a synthesis section in the "
                        + "config)"
                )
            }
            data = TrainingData(source: try HarmonizationDataset(root: dataset, split: .train), freshComposites: nil)
        }
        guard data.source.count >= configuration.batchSize else {
            throw TrainingError(
                "\(data.source.sourceDescription) has \(data.source.count) samples, fewer than one batch of "
                    + "\(configuration.batchSize)"
            )
        }
        return data
    }

    /// The validation split: `validation_dataset`, else the training dataset's own; nil when
    /// validation is off, or when the training dataset has no such split and none was named.
    static func validationSet(_ configuration: TrainingConfiguration, dataset: URL?) throws -> HarmonizationDataset? {
        let validationRoot = configuration.validationDataset.map { URL(fileURLWithPath: $0) } ?? dataset
        guard let validationRoot, configuration.validationInterval > 0 || configuration.validationDataset != nil else {
            return nil
        }
        do {
            let set = try HarmonizationDataset(
                root: validationRoot, split: DatasetSplit(rawValue: configuration.validationSplit) ?? .test)
            return set.count > 0 ? set : nil
        } catch  where configuration.validationDataset == nil {
            return nil  // no test list next to the training data: train without validation
        }
    }

    /// An endless shuffled loader whose crop size follows the multi-resolution schedule, with the
    /// fresh-composite transform after the crop when there is one.
    /// - Parameter part: which slice of every batch this rank loads (docs/scaling.md).
    static func makeLoader(
        _ configuration: TrainingConfiguration, training: TrainingData, totalSteps: Int, part: DatasetShard = .whole
    ) -> BatchLoader {
        let transformAtStep: @Sendable (Int) -> any SampleTransform = {
            [freshComposites = training.freshComposites] step in
            let crop = configuration.trainingAugmentation(
                size: configuration.trainingSize(atStep: step, totalSteps: totalSteps))
            guard var fresh = freshComposites else { return crop }
            fresh.crop = crop
            return fresh
        }
        var options = LoaderOptions(
            batchSize: configuration.batchSize, seed: configuration.seed, shuffle: true, dropLast: true, epochs: nil)
        options.batchPart = part
        return BatchLoader(
            dataset: training.source, transform: transformAtStep(0), options: options,
            transformAtBatch: transformAtStep)
    }

    /// Adam, or AdamW when `weight_decay` > 0.
    static func makeOptimizer(_ configuration: TrainingConfiguration, parameters: [(String, Tensor)]) -> Adam {
        configuration.weightDecay > 0
            ? AdamW(
                parameters: parameters, learningRate: configuration.learningRate, beta1: configuration.beta1,
                beta2: configuration.beta2, epsilon: configuration.epsilon, weightDecay: configuration.weightDecay)
            : Adam(
                parameters: parameters, learningRate: configuration.learningRate, beta1: configuration.beta1,
                beta2: configuration.beta2, epsilon: configuration.epsilon)
    }

    /// Creates the run directory, clears what a killed run left, then restores `last.safetensors`
    /// (resume) or writes the configuration and an empty log (new run). In a data-parallel run
    /// only rank 0 touches the directory; it sends the checkpoint's bytes to the other ranks.
    private func prepareRunDirectory(resume: Bool) throws {
        if communicator.isDistributed && !communicator.isRoot {
            let bytes = communicator.broadcast(Data())
            guard !bytes.isEmpty else { return }  // a new run: nothing to restore
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gknet-rank\(communicator.rank)-\(ProcessInfo.processInfo.processIdentifier).safetensors")
            try AtomicFile.write(bytes, to: copy)
            defer { try? FileManager.default.removeItem(at: copy) }
            try restoreLast(from: copy, checkingData: false)
            return
        }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        Self.removeStaleTemporaryFiles(in: runDirectory)
        let lastURL = runDirectory.appendingPathComponent(Self.lastCheckpoint)
        let restoring = resume && fileManager.fileExists(atPath: lastURL.path)
        if communicator.isDistributed {
            _ = communicator.broadcast(restoring ? try Data(contentsOf: lastURL) : Data())
        }
        if restoring {
            try restoreLast(from: lastURL, checkingData: true)
            history = try TrainingHistory.read(from: runDirectory.appendingPathComponent(Self.logFile), upToStep: step)
            try history.write(to: runDirectory.appendingPathComponent(Self.logFile))
        } else {
            if !resume {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try AtomicFile.write(
                    try encoder.encode(configuration), to: runDirectory.appendingPathComponent(Self.configurationFile))
            }
            try AtomicFile.write(Data(), to: runDirectory.appendingPathComponent(Self.logFile))
        }
    }

    /// Deletes the temporary files (`.<name>.<pid>.tmp`) of `AtomicFile` writes that a killed run
    /// left behind; the run directory belongs to one trainer at a time.
    static func removeStaleTemporaryFiles(in runDirectory: URL) {
        let names = [configurationFile, logFile, lastCheckpoint, bestCheckpoint, plotFile]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: runDirectory.path)) ?? []
        where file.hasSuffix(".tmp") && names.contains(where: { file.hasPrefix(".\($0).") }) {
            try? FileManager.default.removeItem(at: runDirectory.appendingPathComponent(file))
        }
    }

    /// Loads a training checkpoint (`last.safetensors`, or rank 0's copy of it).
    /// - Parameter checkingData: compare the run's data with the checkpoint's fingerprint (rank 0;
    ///   the other ranks' data already equals rank 0's).
    private func restoreLast(from url: URL, checkingData: Bool) throws {
        let file = try SafeTensorsFile(contentsOf: url)
        if let saved = try Checkpoint.configuration(GKNetConfiguration.self, in: file), saved != model.configuration {
            throw TrainingError(
                "\(url.path): the checkpoint holds another model configuration than \(Self.configurationFile)")
        }
        // Checkpoints written before the fingerprint existed have none: nothing to compare.
        if checkingData, let text = file.metadata[Self.dataKey] {
            guard let saved = try? JSONDecoder().decode(DataFingerprint.self, from: Data(text.utf8)) else {
                throw TrainingError("\(url.path): unreadable data fingerprint (\(Self.dataKey)) in the checkpoint")
            }
            let differences = dataFingerprint.differences(fromCheckpoint: saved)
            if !differences.isEmpty {
                let what = differences.joined(separator: "; ")
                guard allowsOtherData else {
                    throw TrainingError(
                        "\(url.path) was trained on other data: \(what); resume with --allow-other-data to continue "
                            + "on this data on purpose, or use the data the run started with")
                }
                otherDataNote = "resuming on other data (--allow-other-data): \(what)"
            }
        }
        let (progress, _) = try TrainingCheckpoint.restore(
            from: url, model: model, optimizer: optimizer, scheduler: scheduler)
        step = progress.step
        guard let loaderText = file.metadata[Self.loaderKey],
            let loaderState = try? JSONDecoder().decode(LoaderState.self, from: Data(loaderText.utf8))
        else {
            throw TrainingError("\(url.path): no data-loader position (\(Self.loaderKey)) in the checkpoint")
        }
        // Other data on purpose (--allow-other-data) may have fewer samples: a position past the
        // end of the epoch continues at the next epoch.
        let samplesPerEpoch = loader.batchesPerEpoch * configuration.batchSize
        loader.restore(
            loaderState.position < samplesPerEpoch
                ? loaderState : LoaderState(epoch: loaderState.epoch + 1, position: 0))
        if let text = file.metadata[Self.trainerKey],
            let state = try? JSONDecoder().decode(TrainerState.self, from: Data(text.utf8))
        {
            bestValidationFMSE = state.bestValidationFMSE
            smoothedLoss = state.smoothedLoss
        }
    }

    struct TrainerState: Codable {
        var bestValidationFMSE: Double?
        var smoothedLoss: Double?
    }

    /// Writes `last.safetensors` (atomically; a kill at any moment leaves the previous one intact).
    public func saveCheckpoint() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let loaderText = String(decoding: try encoder.encode(loader.state), as: UTF8.self)
        let trainerText = String(
            decoding: try encoder.encode(
                TrainerState(bestValidationFMSE: bestValidationFMSE, smoothedLoss: smoothedLoss)), as: UTF8.self)
        try TrainingCheckpoint.save(
            to: runDirectory.appendingPathComponent(Self.lastCheckpoint), model: model, optimizer: optimizer,
            scheduler: scheduler,
            step: step, configuration: model.configuration,
            metadata: [
                Self.loaderKey: loaderText, Self.trainerKey: trainerText,
                Self.dataKey: String(decoding: try encoder.encode(dataFingerprint.summary), as: UTF8.self),
            ])
    }

    /// One optimizer step on the next batch. - Returns: the loss before the update.
    func trainStep() throws -> Float {
        guard let batch = try loader.next() else { throw TrainingError("the data loader ran out of batches") }
        model.train()
        model.zeroGrad()
        let output = model(composite: batch.composites, mask: batch.masks)
        let minimumArea = Float(configuration.lossMinimumArea)
        let loss =
            switch configuration.loss {
            case .fmse:
                foregroundNormalizedMSE(
                    output: output, target: batch.targets, mask: batch.masks, minimumArea: minimumArea)
            case .compositeRelative:
                compositeRelativeMSE(
                    output: output, composite: batch.composites, target: batch.targets, mask: batch.masks,
                    minimumArea: minimumArea, floor: Float(configuration.relativeLossFloor / (255 * 255)))
            }
        var value = loss.item
        if communicator.isDistributed {
            loss.backward()
            value = averageGradientsAcrossRanks(loss: value)  // every rank gets the same value
        }
        guard value.isFinite else {
            throw TrainingError(
                "the loss became \(value) at step \(step + 1); the last checkpoint is kept (lower learning_rate or "
                    + "set gradient_clip_norm)"
            )
        }
        if !communicator.isDistributed { loss.backward() }
        if configuration.gradientClipNorm > 0 {
            _ = clipGradientNorm(model.parameters(), maximumNorm: configuration.gradientClipNorm)
        }
        optimizer.step()
        scheduler.step()
        step += 1
        return value
    }

    /// Replaces every parameter's gradient by its mean over the ranks (one allreduce of a flat
    /// buffer that also carries the loss). The global batch's loss is the mean of the ranks'
    /// per-image means (equal slices), so this is the gradient of the whole batch's loss.
    /// - Returns: the mean of the ranks' losses.
    func averageGradientsAcrossRanks(loss: Float) -> Float {
        let parameters = model.parameters()
        var flat = [Float](repeating: 0, count: parameters.reduce(1) { $0 + $1.count })
        var offset = 0
        for parameter in parameters {
            if let grad = parameter.grad {
                flat.withUnsafeMutableBufferPointer {
                    _ = UnsafeMutableBufferPointer(rebasing: $0[offset...]).update(fromContentsOf: grad)
                }
            }
            offset += parameter.count
        }
        flat[offset] = loss
        communicator.sumInPlace(&flat)
        let scale = 1 / Float(communicator.size)
        offset = 0
        for parameter in parameters {
            // The ranks run the same graph, so a parameter without a gradient has none on every rank.
            if parameter.grad != nil {
                parameter.grad = flat[offset..<offset + parameter.count].map { $0 * scale }
            }
            offset += parameter.count
        }
        return flat[offset] * scale
    }

    /// Whether any rank asks to stop (Ctrl-C reaches each rank on its own; all must stop at the same step).
    func anyRankStopping(_ stopping: Bool) -> Bool {
        guard communicator.isDistributed else { return stopping }
        var flag: [Float] = [stopping ? 1 : 0]
        communicator.sumInPlace(&flag)
        return flag[0] > 0
    }

    /// Validation metrics of the current weights (at the training input size). In a data-parallel
    /// run every rank validates its share of the images with rank 0's weights and statistics, and
    /// the sums are added up.
    func validate() throws -> MetricsSummary? {
        guard let validation else { return nil }
        var options = EvaluationOptions()
        options.resolution = .fixed(configuration.inputSize)
        options.limit = configuration.validationLimit
        options.shard = try DatasetShard(index: communicator.rank, count: communicator.size)
        if communicator.isDistributed { broadcastModelState(buffersOnly: true) }
        let report = try evaluate(dataset: validation, source: .model(Harmonizer(model: model)), options: options)
        model.train()
        guard communicator.isDistributed else { return report.all }
        var totals = report.all.totals
        communicator.sumInPlace(&totals)
        return MetricsSummary(totals: totals)
    }

    /// Trains until `totalSteps` or until `shouldStop()` turns true (checked after every step;
    /// the run then saves `last.safetensors` and returns normally).
    /// - Parameter report: receives the human progress lines.
    /// In a data-parallel run every rank calls this; only rank 0 reports and writes files.
    public func run(shouldStop: () -> Bool = { false }, report reportLine: (String) -> Void = { _ in }) throws
        -> TrainingResult
    {
        let firstStep = step
        let writes = communicator.isRoot
        func report(_ line: String) { if writes { reportLine(line) } }
        let logURL = runDirectory.appendingPathComponent(Self.logFile)
        let log = writes ? try FileHandle(forWritingTo: logURL) : nil
        defer { try? log?.close() }
        try log?.seekToEnd()
        let start = Date()
        var interrupted = false
        let preset = configuration.model == nil ? configuration.preset : "custom"
        if let otherDataNote { report(otherDataNote) }
        if step >= totalSteps {
            report("the run already finished all \(totalSteps) steps (\(preset) model); nothing to train")
        } else {
            let sizes =
                configuration.lowResolutionSize > 0
                ? "\(configuration.lowResolutionSize)x\(configuration.lowResolutionSize) then "
                    + "\(configuration.inputSize)x\(configuration.inputSize)"
                : "\(configuration.inputSize)x\(configuration.inputSize)"
            let data =
                configuration.synthesis != nil ? ", fresh composites from \(loader.dataset.sourceDescription)" : ""
            let processes =
                communicator.isDistributed
                ? " per process, \(communicator.size) processes (\(configuration.batchSize / communicator.size) "
                    + "images each)"
                    + (configuration.syncBatchNorm ? ", synchronized batch norm" : "") : ""
            report(
                "training \(preset) model, \(model.parameterCount) parameters, steps \(step + 1)...\(totalSteps), "
                    + "batch \(configuration.batchSize) at \(sizes)\(data), \(Threading.count) threads\(processes)"
            )
        }
        while step < totalSteps {
            let stepStart = Date()
            let loss = try trainStep()
            let seconds = Date().timeIntervalSince(stepStart)
            smoothedLoss = smoothedLoss.map { 0.9 * $0 + 0.1 * Double(loss) } ?? Double(loss)
            let imagesPerSecond = Double(configuration.batchSize) / max(seconds, 1e-9)
            let entry = TrainingLogRecord.training(
                step: step, loss: loss, learningRate: optimizer.learningRate, imagesPerSecond: imagesPerSecond)
            history.records.append(entry)
            try log?.write(contentsOf: Data((entry.jsonLine + "\n").utf8))
            if step % configuration.logInterval == 0 || step == totalSteps {
                let elapsed = Date().timeIntervalSince(start)
                let remaining = elapsed / Double(step - firstStep) * Double(totalSteps - step)
                report(
                    String(
                        format: "step %d/%d  loss %.5f (smoothed %.5f)  lr %.2e  %.1f img/s  ETA %@", step, totalSteps,
                        loss, smoothedLoss ?? 0, optimizer.learningRate, imagesPerSecond, formatDuration(remaining)))
            }
            let validating =
                configuration.validationInterval > 0 && step % configuration.validationInterval == 0
                || step == totalSteps
            if validating, let summary = try validate() {
                let validationEntry = TrainingLogRecord.validation(
                    step: step,
                    metrics: .init(mse: summary.mse, fmse: summary.fmse, psnr: summary.psnr, count: summary.count))
                history.records.append(validationEntry)
                try log?.write(contentsOf: Data((validationEntry.jsonLine + "\n").utf8))
                report(
                    String(
                        format: "validation at step %d: fMSE %.2f  MSE %.2f  PSNR %.2f dB (%d images)", step,
                        summary.fmse, summary.mse, summary.psnr, summary.count))
                if bestValidationFMSE.map({ summary.fmse < $0 }) ?? true {
                    bestValidationFMSE = summary.fmse
                    if writes {
                        try Checkpoint.save(
                            model, to: runDirectory.appendingPathComponent(Self.bestCheckpoint),
                            configuration: model.configuration, step: step)
                    }
                }
                if writes {
                    try? ImageFile.write(
                        TrainingPlot.render(history), to: runDirectory.appendingPathComponent(Self.plotFile))
                }
            }
            let stopping = anyRankStopping(shouldStop())
            if step % configuration.checkpointInterval == 0 || step == totalSteps || stopping {
                if communicator.isDistributed { broadcastModelState(buffersOnly: true) }
                if writes { try saveCheckpoint() }
            }
            if stopping && step < totalSteps {
                interrupted = true
                report("interrupted: saved \(Self.lastCheckpoint) at step \(step); continue with --resume")
                break
            }
        }
        return TrainingResult(
            firstStep: firstStep, lastStep: step, totalSteps: totalSteps, interrupted: interrupted,
            bestValidationFMSE: bestValidationFMSE)
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
    if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
    return "\(total)s"
}
