// `gknet train`: a resumable training run in a run directory (`RunDirectory`). A resumed run
// continues exactly: its losses equal an uninterrupted run's bit for bit at the same thread count.
// Under mpirun the run is data-parallel (`GradientSynchronization`, docs/scaling.md). The thread
// count is the command's to set (`TrainingConfiguration.threads`), before the trainer runs.
//
// The recipe is `run()`: step, log, validate now and then keeping the best weights, checkpoint now
// and then; `trainStep()` is forward, loss, backward, gradient synchronization, clipping, Adam.
import Foundation
import GKNetDataParallel
import GKNetDatasets
import GKNetEvaluation
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
    public let files: RunDirectory
    public var runDirectory: URL { files.url }
    public let model: GKNet
    public let totalSteps: Int
    public internal(set) var step = 0
    /// How this process keeps in step with the others of the run (a no-op for a run of one).
    let synchronization: any GradientSynchronization
    let optimizer: Adam
    /// The model and its replicas (`replicas` in the configuration; just the model when 1), made at
    /// the first step, once the command has set the thread count.
    private var replicatedStep: ReplicatedTrainingStep?
    let scheduler: LearningRateScheduler
    let loader: BatchLoader
    let validation: HarmonizationDataset?
    /// The weights' moving average (`weight_average_decay` > 0): validated and kept as best.
    let weightAverage: WeightAverage?
    var bestValidationFMSE: Double?
    var smoothedLoss: Double?
    var history = TrainingHistory()
    /// What this run trains and validates on (checked between ranks and against a resumed checkpoint).
    public let dataFingerprint: DataFingerprint
    /// Whether a resume may continue on data other than the checkpoint's (`--allow-other-data`).
    let allowsOtherData: Bool
    /// Set when a resume continued on other data on purpose: what differs (reported when the run starts).
    var otherDataNote: String?
    /// The table of measured convolution backends this run records (one-process runs; nil in a
    /// data-parallel run).
    var convolutionTuning: ConvolutionTuning?
    /// How many measured convolution choices the progress lines have reported.
    private var reportedConvolutionChoices = 0

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
        let files = RunDirectory(runDirectory)
        let synchronization = gradientSynchronization(of: communicator)
        let configuration = try synchronization.shareConfiguration {
            try files.resolveConfiguration(requested, resume: resume)
        }
        let parts = communicator.size * max(1, configuration.replicas)
        guard configuration.batchSize % parts == 0 else {
            throw TrainingError(
                "batch_size \(configuration.batchSize) does not split over \(communicator.size) processes x "
                    + "\(configuration.replicas) replicas: use a multiple of \(parts)"
            )
        }
        (self.configuration, self.files, self.synchronization) = (configuration, files, synchronization)
        allowsOtherData = allowOtherData
        let training = try Self.trainingData(configuration, dataset: dataset)
        validation = try Self.validationSet(configuration, dataset: dataset)
        // A rank given another --config than rank 0's would silently train with rank 0's: compare what it was given.
        dataFingerprint = try DataFingerprint(
            configuration: requested ?? configuration, training: training.source, validation: validation)
        try synchronization.checkAgreement(dataFingerprint)
        model = try GKNet(configuration: try configuration.modelConfiguration(), seed: configuration.seed)
        if !resume, let initialWeights = configuration.initialWeights {
            try Self.loadInitialWeights(into: model, from: URL(fileURLWithPath: initialWeights))
        }
        totalSteps = configuration.totalSteps(batchesPerEpoch: training.source.count / configuration.batchSize)
        loader = Self.makeLoader(
            configuration, training: training, totalSteps: totalSteps, part: try synchronization.shard,
            prefetch: Self.replicaCount(configuration, processCount: synchronization.processCount) < Threading.count)
        optimizer = Self.makeOptimizer(configuration, parameters: model.namedParameters())
        scheduler = LearningRateScheduler(
            schedule: configuration.learningRateSchedule(totalSteps: totalSteps), optimizer: optimizer)
        if configuration.syncBatchNorm { synchronization.synchronizeBatchNorm(in: model) }
        weightAverage =
            configuration.weightAverageDecay > 0
            ? WeightAverage(model: model, decay: configuration.weightAverageDecay) : nil
        try restoreOrStart(resume: resume)
        synchronization.shareModelState(model, buffersOnly: false)
    }

    /// The replicated step, made on first use with `replicaCount` copies.
    func replicated() throws -> ReplicatedTrainingStep {
        if let replicatedStep { return replicatedStep }
        let step = try ReplicatedTrainingStep(
            model: model, count: Self.replicaCount(configuration, processCount: synchronization.processCount))
        replicatedStep = step
        return step
    }

    /// How many model replicas a step runs: `replicas`, or with 0 the largest count up to the kernel
    /// threads that divides this process's share of the batch.
    static func replicaCount(_ configuration: TrainingConfiguration, processCount: Int) -> Int {
        let share = configuration.batchSize / processCount
        return configuration.replicas > 0
            ? configuration.replicas : (1...max(1, min(Threading.count, share))).last { share % $0 == 0 } ?? 1
    }

    /// Restores `last.safetensors` (resume; rank 0 sends its bytes to the other ranks), or starts the
    /// log (and writes the configuration of a new run). Only rank 0 touches the directory.
    private func restoreOrStart(resume: Bool) throws {
        let last = synchronization.isRoot ? try files.prepare(resume: resume) : nil
        try planConvolutions()
        try synchronization.withSharedCheckpoint(last) { checkpoint in
            if let checkpoint {
                try restoreLast(from: checkpoint, checkingData: synchronization.isRoot)
                if synchronization.isRoot { history = try files.truncateLog(atStep: step) }
            } else if synchronization.isRoot {
                try files.startLog(newConfiguration: resume ? nil : configuration)
            }
        }
    }

    /// The measured backends of the training convolutions (`ConvolutionTuning`): a run takes the
    /// choices its run directory holds (a resumed run its own; a new run those of a
    /// convolution-plan.json put there to repeat another run's choices), and every new choice is
    /// recorded there at once, so that the run continues bit for bit however often it is
    /// interrupted. A data-parallel run does not measure (each rank would choose for itself and only
    /// rank 0 keeps files): its ranks use the fixed rule.
    private func planConvolutions() throws {
        let tuning = ConvolutionTuning.current
        guard synchronization.processCount == 1 else {
            tuning.isEnabled = false
            return
        }
        if let plan = try files.readConvolutionPlan() { tuning.adopt(plan) }
        let plan = tuning.plan
        if !plan.entries.isEmpty { try files.writeConvolutionPlan(plan) }
        // The whole table at each new choice; the lock keeps a slower writer of an older table from
        // landing last. A file that cannot be written does not stop the run: it warns, and only a
        // resume could then differ.
        let (files, writing) = (files, NSLock())
        tuning.observeNewChoices { _ in
            writing.withLock {
                do {
                    try files.writeConvolutionPlan(tuning.plan)
                } catch {
                    FileHandle.standardError.write(
                        Data("warning: \(files.convolutionPlanURL.path) not written: \(error)\n".utf8))
                }
            }
        }
        convolutionTuning = tuning
        reportedConvolutionChoices = plan.entries.count
    }

    /// A line when the last step measured new convolution backends (the first step at each crop size).
    private func convolutionPlanLine() -> String? {
        guard let entries = convolutionTuning?.plan.entries, entries.count > reportedConvolutionChoices else {
            return nil
        }
        let measured = entries.count - reportedConvolutionChoices
        reportedConvolutionChoices = entries.count
        let onOneDNN = entries.suffix(measured).filter { $0.choice == .oneDNN }.count
        return "convolution backends measured for \(measured) training geometries: \(onOneDNN) on oneDNN, "
            + "\(measured - onOneDNN) on Winograd (\(RunDirectory.convolutionPlanFile); GKNET_CONV_TUNING=0 keeps the "
            + "fixed rule)"
    }

    /// Trains until `totalSteps` or until `shouldStop()` turns true (checked after every step;
    /// the run then saves `last.safetensors` and returns normally).
    /// - Parameter report: receives the human progress lines (rank 0's only).
    /// In a data-parallel run every rank calls this; only rank 0 reports and writes files.
    public func run(shouldStop: () -> Bool = { false }, report: (String) -> Void = { _ in }) throws
        -> TrainingResult
    {
        let say = synchronization.isRoot ? report : { _ in }
        let log = synchronization.isRoot ? try files.openLog() : nil
        let firstStep = step, start = Date()
        if let otherDataNote { say(otherDataNote) }
        say(startLine(replicas: try replicated().count))
        while step < totalSteps {
            let stepStart = Date()
            let loss = try trainStep()
            try record(loss: loss, seconds: Date().timeIntervalSince(stepStart), log: log)
            if let line = convolutionPlanLine() { say(line) }
            if step % configuration.logInterval == 0 || step == totalSteps {
                say(progressLine(loss: loss, elapsed: Date().timeIntervalSince(start), stepsDone: step - firstStep))
            }
            if configuration.validationInterval > 0 && step % configuration.validationInterval == 0
                || step == totalSteps
            {
                try validateKeepingBest(log: log, say: say)
            }
            let stopping = synchronization.anyStopping(shouldStop())
            if step % configuration.checkpointInterval == 0 || step == totalSteps || stopping {
                synchronization.shareModelState(model, buffersOnly: true)
                if synchronization.isRoot { try saveCheckpoint() }
            }
            if stopping && step < totalSteps {
                say("interrupted: saved \(RunDirectory.lastCheckpoint) at step \(step); continue with --resume")
                return result(firstStep: firstStep, interrupted: true)
            }
        }
        return result(firstStep: firstStep, interrupted: false)
    }

    /// One optimizer step on the next batch. - Returns: the loss before the update (the mean over
    /// the processes of a data-parallel run).
    func trainStep() throws -> Float {
        guard let batch = try loader.next() else { throw TrainingError("the data loader ran out of batches") }
        let replicated = try replicated()
        let loss = replicated.lossAndGradients { replica, part in
            let slice = { ReplicatedTrainingStep.slice($0, part: part, of: replicated.count) }
            let composites = slice(batch.composites), masks = slice(batch.masks)
            let output = replica(composite: composites, mask: masks)
            return trainingLoss(output: output, composites: composites, targets: slice(batch.targets), masks: masks)
        }
        let value = synchronization.averageGradients(of: model.parameters(), loss: loss)
        guard value.isFinite else {
            throw TrainingError(
                "the loss became \(value) at step \(step + 1); the last checkpoint is kept (lower learning_rate or "
                    + "set gradient_clip_norm)"
            )
        }
        if configuration.gradientClipNorm > 0 {
            _ = clipGradientNorm(model.parameters(), maximumNorm: configuration.gradientClipNorm)
        }
        optimizer.step()
        replicated.shareWeights()
        weightAverage?.update(from: model)
        scheduler.step()
        step += 1
        return value
    }

    /// The configured loss (a scalar tensor: the mean over the images) of the output for a batch (or
    /// a replica's part of one).
    func trainingLoss(output: Tensor, composites: Tensor, targets: Tensor, masks: Tensor) -> Tensor {
        let minimumArea = Float(configuration.lossMinimumArea)
        switch configuration.loss {
        case .fmse:
            return foregroundNormalizedMSE(output: output, target: targets, mask: masks, minimumArea: minimumArea)
        case .compositeRelative:
            return compositeRelativeMSE(
                output: output, composite: composites, target: targets, mask: masks, minimumArea: minimumArea,
                floor: Float(configuration.relativeLossFloor / (255 * 255)))
        }
    }

    /// Appends a step to the history and the log, and updates the smoothed loss.
    private func record(loss: Float, seconds: Double, log: RunLog?) throws {
        smoothedLoss = smoothedLoss.map { 0.9 * $0 + 0.1 * Double(loss) } ?? Double(loss)
        let entry = TrainingLogRecord.training(
            step: step, loss: loss, learningRate: optimizer.learningRate,
            imagesPerSecond: Double(configuration.batchSize) / max(seconds, 1e-9))
        history.records.append(entry)
        try log?.append(entry)
    }

    /// Validates, logs and reports the metrics, keeps best.safetensors when they are the best so far,
    /// and redraws the plot.
    /// With a weight average, validation and best.safetensors see the average, not the raw weights.
    private func validateKeepingBest(log: RunLog?, say: (String) -> Void) throws {
        try withValidatedWeights {
            guard let summary = try validate() else { return }
            let entry = TrainingLogRecord.validation(
                step: step,
                metrics: .init(mse: summary.mse, fmse: summary.fmse, psnr: summary.psnr, count: summary.count))
            history.records.append(entry)
            try log?.append(entry)
            say(
                String(
                    format: "validation%@ at step %d: fMSE %.2f  MSE %.2f  PSNR %.2f dB (%d images)",
                    weightAverage == nil ? "" : " (weight average)", step, summary.fmse, summary.mse, summary.psnr,
                    summary.count))
            if bestValidationFMSE.map({ summary.fmse < $0 }) ?? true {
                bestValidationFMSE = summary.fmse
                if synchronization.isRoot { try files.saveBest(model, step: step) }
            }
        }
        if synchronization.isRoot { files.savePlot(history) }
    }

    /// Runs `body` with the weights that validation sees: the weight average, or the model's own.
    func withValidatedWeights<T>(_ body: () throws -> T) rethrows -> T {
        guard let weightAverage else { return try body() }
        return try weightAverage.withAverage(in: model, body)
    }

    /// Validation metrics of the current weights (at the training input size). In a data-parallel
    /// run every rank validates its share of the images with rank 0's weights and statistics, and
    /// the sums are added up.
    func validate() throws -> MetricsSummary? {
        guard let validation else { return nil }
        var options = EvaluationOptions()
        options.resolution = .fixed(configuration.inputSize)
        options.limit = configuration.validationLimit
        options.shard = try synchronization.shard
        synchronization.shareModelState(model, buffersOnly: true)
        let report = try evaluate(dataset: validation, source: .model(Harmonizer(model: model)), options: options)
        model.train()
        var totals = report.all.totals
        synchronization.sum(&totals)
        return MetricsSummary(totals: totals)
    }

    private func result(firstStep: Int, interrupted: Bool) -> TrainingResult {
        TrainingResult(
            firstStep: firstStep, lastStep: step, totalSteps: totalSteps, interrupted: interrupted,
            bestValidationFMSE: bestValidationFMSE)
    }

    /// The line that opens a run: what is trained, on what, at which sizes, with how many threads
    /// and model replicas.
    private func startLine(replicas: Int) -> String {
        let preset = configuration.model == nil ? configuration.preset : "custom"
        guard step < totalSteps else {
            return "the run already finished all \(totalSteps) steps (\(preset) model); nothing to train"
        }
        let (low, full) = (configuration.lowResolutionSize, configuration.inputSize)
        let sizes = low > 0 ? "\(low)x\(low) then \(full)x\(full)" : "\(full)x\(full)"
        var data = configuration.synthesis != nil ? ", fresh composites from \(loader.dataset.sourceDescription)" : ""
        if let photos = loader.dataset as? PhotoCollection, photos.cache.budgetBytes > 0 {
            let (kept, bytes) = photos.cache.usage
            data += String(
                format: ", %d of them kept in memory (%.0f of %d MiB)", kept, Double(bytes) / 1_048_576,
                photos.cache.budgetBytes >> 20)
        }
        let processes = synchronization.processCount
        let perProcess =
            processes > 1
            ? " per process, \(processes) processes (\(configuration.batchSize / processes) images each)"
                + (configuration.syncBatchNorm ? ", synchronized batch norm" : "") : ""
        return "training \(preset) model, \(model.parameterCount) parameters, steps \(step + 1)...\(totalSteps), "
            + "batch \(configuration.batchSize) at \(sizes)\(data), \(Threading.count) threads\(perProcess)"
            + (replicas > 1 ? ", \(replicas) model replicas of one thread each" : "")
            + (weightAverage.map { ", validating a weight average (decay \($0.decay))" } ?? "")
    }

    /// A progress line: step, loss, learning rate, speed of the last step, time left at the run's mean pace.
    private func progressLine(loss: Float, elapsed: Double, stepsDone: Int) -> String {
        let remaining = elapsed / Double(stepsDone) * Double(totalSteps - step)
        return String(
            format: "step %d/%d  loss %.5f (smoothed %.5f)  lr %.2e  %.1f img/s  ETA %@", step, totalSteps, loss,
            smoothedLoss ?? 0, optimizer.learningRate, history.records.last?.imagesPerSecond ?? 0,
            formatDuration(remaining))
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let total = Int(seconds.rounded())
    if total >= 3600 { return "\(total / 3600)h\(String(format: "%02d", total % 3600 / 60))m" }
    if total >= 60 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
    return "\(total)s"
}
