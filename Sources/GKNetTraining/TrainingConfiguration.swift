import Foundation
// Every hyper-parameter of a training run, as a Codable JSON file (docs/training.md documents
// each key). Unknown keys and impossible values are errors before any work starts.
import GKNetDatasets
import GKNetModel
import GKNetNeuralNet

/// The learning-rate schedule.
public enum ScheduleKind: String, Codable, Sendable {
    /// lr x gamma at each milestone step (iDIH: x0.1 at epochs 105 and 115 of 120).
    case multiStep = "multi-step"
    /// Linear warm-up then cosine decay to `minimumLearningRate`.
    case cosine
    case constant
}

/// The training loss (`loss` key).
public enum LossKind: String, Codable, Sendable {
    /// Foreground MSE (`foregroundNormalizedMSE`).
    case fmse
    /// Each image's foreground MSE relative to its composite's (`compositeRelativeMSE`).
    case compositeRelative = "composite_relative"
}

public struct TrainingConfiguration: Codable, Sendable, Equatable {
    /// Model preset (paper, small, tiny); `model` overrides individual fields.
    public var preset = "tiny"
    /// Optional full model configuration (JSON object with the GKNet keys); replaces the preset.
    public var model: GKNetConfiguration? = nil
    /// The model's output head (image, residual, affine; docs/model.md); nil = the preset's (image).
    public var output: OutputHead? = nil
    /// Training crop size in pixels (square; a multiple of 16). The model's input_size follows it.
    public var inputSize = 256
    /// Images per optimizer step.
    public var batchSize = 16
    /// Adam learning rate (iDIH: 1e-3).
    public var learningRate = 1e-3
    /// Adam betas.
    public var beta1 = 0.9
    public var beta2 = 0.999
    /// Adam epsilon.
    public var epsilon = 1e-8
    /// Decoupled weight decay (AdamW) when > 0; 0 = plain Adam (iDIH).
    public var weightDecay = 0.0
    /// Clip the global gradient norm to this value (0 = off).
    public var gradientClipNorm = 0.0
    /// Learning-rate schedule.
    public var schedule: ScheduleKind = .cosine
    /// Steps of linear warm-up (cosine schedule).
    public var warmupSteps = 100
    /// Final learning rate of the cosine schedule.
    public var minimumLearningRate = 1e-5
    /// Multi-step schedule: milestones as fractions of the total steps, and the factor.
    public var milestones: [Double] = [0.875, 0.958]
    public var gamma = 0.1
    /// Total optimizer steps (takes precedence over epochs when > 0).
    public var steps = 0
    /// Epochs over the training list (used when `steps` is 0).
    public var epochs = 120
    /// Random resized crop scale range (fraction of the image area) and horizontal flips.
    public var cropScaleMinimum = 0.5
    public var cropScaleMaximum = 1.0
    public var horizontalFlip = true
    /// Probability of a random colour change of the whole crop, composite and target alike
    /// (`GlobalColorJitter` at its default ranges; 0 = off, as before the key existed).
    public var colorJitter = 0.0
    /// Probability of replacing a sample by a background-shift sample (`BackgroundShift`: the
    /// foreground as in the real image, the scene around it adjusted; 0 = off, as before the key existed).
    public var backgroundShift = 0.0
    /// Loss: foreground-normalised MSE minimum area in pixels (iDIH: 100).
    public var lossMinimumArea = 100.0
    /// Seed of weights, data order and augmentation.
    public var seed: UInt64 = 0
    /// Kernel threads (0 = the runtime setting: RuntimeSettings.threads, or all cores); per
    /// process under mpirun.
    public var threads = 0
    /// Under mpirun: batch norm with the statistics of the whole global batch (every rank's share,
    /// added up across ranks in the forward and backward passes) instead of each rank's own share.
    /// With it, N ranks train exactly like one process with the same `batch_size` (docs/scaling.md).
    public var syncBatchNorm = false
    /// Model replicas per process: each step's batch (this process's share under mpirun) is split
    /// over this many copies of the model that run side by side, one per thread, each with its
    /// kernels on that thread alone (`ReplicatedTrainingStep`; faster on small maps, docs/training.md).
    /// Batch norm then normalizes each replica's part with its own statistics. 1: one model, every
    /// kernel on all threads; 0: one per kernel thread (the largest count up to `threads` that divides
    /// the batch). A configuration without the key trains with 1, as before the key existed.
    public var replicas = 1
    /// Dataset split used for validation ("test" of the same dataset, or a separate root).
    public var validationSplit = "test"
    public var validationDataset: String? = nil
    /// Validate every this many steps (0 = only at the end); at most this many validation images (0 = all).
    public var validationInterval = 500
    public var validationLimit = 0
    /// Save `last.safetensors` every this many steps.
    public var checkpointInterval = 100
    /// Print a progress line every this many steps.
    public var logInterval = 10
    /// Fresh composites: train on photos + masks, drawing a new composite for every sample of
    /// every epoch (nil = the dataset's fixed composites).
    public var synthesis: FreshCompositeSettings? = nil
    /// Multi-resolution schedule: the first `lowResolutionFraction` of the steps train at
    /// `lowResolutionSize` x `lowResolutionSize` (0 = off), the rest at `inputSize`.
    public var lowResolutionSize = 0
    public var lowResolutionFraction = 0.0
    /// Fine-tuning: a model file (a `gknet train` checkpoint or a `gknet export`ed model) whose weights
    /// start the run instead of a random initialisation; its model configuration must be the run's
    /// (input size aside). The optimizer starts fresh. Ignored on resume (the checkpoint has the weights).
    public var initialWeights: String? = nil
    /// The training loss: `fmse` (foreground MSE, iDIH's) or `composite_relative` (each image's foreground
    /// MSE over its composite's own plus `relative_loss_floor`; `compositeRelativeMSE`).
    public var loss: LossKind = .fmse
    /// The floor of `composite_relative`, in fMSE units (0-255 scale).
    public var relativeLossFloor = 100.0
    /// Keep an exponential moving average of the weights (and batch-norm statistics) with this decay
    /// per step, validated and saved as `best.safetensors` instead of the raw weights (0 = off;
    /// `WeightAverage`).
    public var weightAverageDecay = 0.0

    public init() {}

    /// Decodes a config file, rejecting unknown keys (a typo must not silently train with a default).
    public static func load(from url: URL) throws -> TrainingConfiguration {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigurationError("\(url.path): cannot read config (\(error.localizedDescription))")
        }
        return try decode(data, source: url.path)
    }

    public static func decode(_ data: Data, source: String = "config") throws -> TrainingConfiguration {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigurationError("\(source): not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw ConfigurationError("\(source): the config must be a JSON object")
        }
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        let unknown = dictionary.keys.filter { !known.contains($0) }.sorted()
        if !unknown.isEmpty {
            throw ConfigurationError(
                "\(source): unknown key\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")) (see "
                    + "docs/training.md)"
            )
        }
        if let synthesis = dictionary["synthesis"] as? [String: Any] {
            let knownSynthesis = Set(FreshCompositeSettings.CodingKeys.allCases.map(\.stringValue))
            let unknownSynthesis = synthesis.keys.filter { !knownSynthesis.contains($0) }.sorted()
            if !unknownSynthesis.isEmpty {
                throw ConfigurationError(
                    "\(source): unknown key\(unknownSynthesis.count > 1 ? "s" : "") in synthesis: "
                        + "\(unknownSynthesis.joined(separator: ", ")) (see docs/training.md)"
                )
            }
        }
        do {
            let configuration = try JSONDecoder().decode(TrainingConfiguration.self, from: data)
            try configuration.validate()
            return configuration
        } catch let error as ConfigurationError {
            throw ConfigurationError("\(source): \(error.description)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw ConfigurationError(
                "\(source): wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch let DecodingError.dataCorrupted(context) {
            // The text parsed as JSON above, so a corrupted-data error without a key path is a
            // number that its key's type cannot hold (Foundation's decoder names neither).
            guard !context.codingPath.isEmpty else {
                throw ConfigurationError(
                    "\(source): a number does not fit its key's type (a fraction where a whole number is "
                        + "expected, or out of range); see docs/training.md"
                )
            }
            throw ConfigurationError(
                "\(source): invalid value at \(context.codingPath.map(\.stringValue).joined(separator: ".")): "
                    + "\(context.debugDescription)"
            )
        } catch {
            throw ConfigurationError("\(source): \(error)")
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case preset, model, output, inputSize = "input_size", batchSize = "batch_size", learningRate = "learning_rate"
        case beta1, beta2, epsilon, weightDecay = "weight_decay", gradientClipNorm = "gradient_clip_norm"
        case schedule, warmupSteps = "warmup_steps", minimumLearningRate = "minimum_learning_rate"
        case milestones, gamma, steps, epochs
        case cropScaleMinimum = "crop_scale_minimum", cropScaleMaximum = "crop_scale_maximum", horizontalFlip =
            "horizontal_flip", colorJitter = "color_jitter", backgroundShift = "background_shift"
        case lossMinimumArea = "loss_minimum_area", seed, threads, syncBatchNorm = "sync_batch_norm", replicas
        case validationSplit = "validation_split", validationDataset = "validation_dataset"
        case validationInterval = "validation_interval", validationLimit = "validation_limit"
        case checkpointInterval = "checkpoint_interval", logInterval = "log_interval"
        case synthesis, lowResolutionSize = "low_resolution_size", lowResolutionFraction = "low_resolution_fraction"
        case initialWeights = "initial_weights", loss, relativeLossFloor = "relative_loss_floor"
        case weightAverageDecay = "weight_average_decay"
    }

    /// Missing keys keep their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = TrainingConfiguration()
        func read<T: Decodable>(_ key: CodingKeys, _ value: inout T) throws {
            if let decoded = try c.decodeIfPresent(T.self, forKey: key) { value = decoded }
        }
        try read(.preset, &d.preset)
        d.model = try c.decodeIfPresent(GKNetConfiguration.self, forKey: .model)
        d.output = try c.decodeIfPresent(OutputHead.self, forKey: .output)
        try read(.inputSize, &d.inputSize)
        try read(.batchSize, &d.batchSize)
        try read(.learningRate, &d.learningRate)
        try read(.beta1, &d.beta1)
        try read(.beta2, &d.beta2)
        try read(.epsilon, &d.epsilon)
        try read(.weightDecay, &d.weightDecay)
        try read(.gradientClipNorm, &d.gradientClipNorm)
        try read(.schedule, &d.schedule)
        try read(.warmupSteps, &d.warmupSteps)
        try read(.minimumLearningRate, &d.minimumLearningRate)
        try read(.milestones, &d.milestones)
        try read(.gamma, &d.gamma)
        try read(.steps, &d.steps)
        try read(.epochs, &d.epochs)
        try read(.cropScaleMinimum, &d.cropScaleMinimum)
        try read(.cropScaleMaximum, &d.cropScaleMaximum)
        try read(.horizontalFlip, &d.horizontalFlip)
        try read(.colorJitter, &d.colorJitter)
        try read(.backgroundShift, &d.backgroundShift)
        try read(.lossMinimumArea, &d.lossMinimumArea)
        try read(.seed, &d.seed)
        try read(.threads, &d.threads)
        try read(.syncBatchNorm, &d.syncBatchNorm)
        try read(.replicas, &d.replicas)
        try read(.validationSplit, &d.validationSplit)
        d.validationDataset = try c.decodeIfPresent(String.self, forKey: .validationDataset)
        try read(.validationInterval, &d.validationInterval)
        try read(.validationLimit, &d.validationLimit)
        try read(.checkpointInterval, &d.checkpointInterval)
        try read(.logInterval, &d.logInterval)
        d.synthesis = try c.decodeIfPresent(FreshCompositeSettings.self, forKey: .synthesis)
        try read(.lowResolutionSize, &d.lowResolutionSize)
        try read(.lowResolutionFraction, &d.lowResolutionFraction)
        d.initialWeights = try c.decodeIfPresent(String.self, forKey: .initialWeights)
        try read(.loss, &d.loss)
        try read(.relativeLossFloor, &d.relativeLossFloor)
        try read(.weightAverageDecay, &d.weightAverageDecay)
        self = d
    }

    /// The model configuration this run trains.
    public func modelConfiguration() throws -> GKNetConfiguration {
        var configuration = try model ?? GKNetConfiguration.preset(preset)
        configuration.inputSize = inputSize
        if let output { configuration.output = output }
        try configuration.validate()
        return configuration
    }

    /// The training crop size at `step` (0-based) of a run of `totalSteps`.
    public func trainingSize(atStep step: Int, totalSteps: Int) -> Int {
        guard lowResolutionSize > 0 else { return inputSize }
        return Double(step) < lowResolutionFraction * Double(totalSteps) ? lowResolutionSize : inputSize
    }

    /// Optimizer steps of the run: `steps`, or `epochs` x `batchesPerEpoch`.
    public func totalSteps(batchesPerEpoch: Int) -> Int {
        steps > 0 ? steps : epochs * batchesPerEpoch
    }

    /// The learning-rate schedule of a run of `totalSteps` (milestones and warm-up in steps).
    public func learningRateSchedule(totalSteps: Int) -> any LearningRateSchedule {
        switch schedule {
        case .constant:
            ConstantSchedule(learningRate: learningRate)
        case .multiStep:
            MultiStepSchedule(
                baseLearningRate: learningRate, milestones: milestones.map { Int($0 * Double(totalSteps)) },
                gamma: gamma)
        case .cosine:
            WarmupCosineSchedule(
                baseLearningRate: learningRate, warmupSteps: min(warmupSteps, totalSteps), totalSteps: totalSteps,
                minimumLearningRate: minimumLearningRate)
        }
    }

    /// The training augmentation at crop size `size`: random resized crop in the configured scale
    /// range, then horizontal flips if enabled, then the colour jitter if enabled.
    public func trainingAugmentation(size: Int) -> TrainingAugmentation {
        TrainingAugmentation(
            width: size, height: size, scale: Float(cropScaleMinimum)...Float(cropScaleMaximum),
            flipProbability: horizontalFlip ? 0.5 : 0,
            colorJitter: colorJitter > 0 ? GlobalColorJitter(probability: Float(colorJitter)) : nil,
            backgroundShift: backgroundShift > 0 ? GlobalColorJitter(probability: Float(backgroundShift)) : nil)
    }

    /// Largest `steps` and `warmup_steps` (2^40) and `epochs` (10^6) accepted.
    public static let maximumSteps = 1 << 40
    public static let maximumEpochs = 1_000_000

    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError(message) }
        }
        if model == nil {
            try require(
                GKNetConfiguration.presetNames.contains(preset),
                "preset must be one of \(GKNetConfiguration.presetNames.joined(separator: ", ")), is \"\(preset)\"")
        }
        try require(
            inputSize >= 16 && inputSize % 16 == 0 && inputSize <= 2048,
            "input_size must be a multiple of 16 in 16...2048, is \(inputSize)")
        try require(batchSize >= 1 && batchSize <= 1024, "batch_size must be in 1...1024, is \(batchSize)")
        try require(learningRate > 0 && learningRate <= 10, "learning_rate must be in (0, 10], is \(learningRate)")
        try require((0..<1).contains(beta1) && (0..<1).contains(beta2), "beta1 and beta2 must be in [0, 1)")
        try require(epsilon > 0, "epsilon must be positive")
        try require(weightDecay >= 0, "weight_decay must be >= 0")
        try require(gradientClipNorm >= 0, "gradient_clip_norm must be >= 0")
        try require(
            warmupSteps >= 0 && warmupSteps <= Self.maximumSteps, "warmup_steps must be in 0...\(Self.maximumSteps)")
        try require(
            minimumLearningRate >= 0 && minimumLearningRate <= learningRate,
            "minimum_learning_rate must be in [0, learning_rate]")
        try require(
            milestones.allSatisfy { $0 > 0 && $0 < 1 } && milestones == milestones.sorted(),
            "milestones must be increasing fractions in (0, 1)")
        try require(gamma > 0 && gamma <= 1, "gamma must be in (0, 1]")
        try require(steps >= 0 && epochs >= 0 && (steps > 0 || epochs > 0), "steps or epochs must be positive")
        // Bounds keep epochs x batches per epoch and the schedule arithmetic far from overflow.
        try require(
            steps <= Self.maximumSteps && epochs <= Self.maximumEpochs,
            "steps must be at most \(Self.maximumSteps) and epochs at most \(Self.maximumEpochs)")
        try require(
            cropScaleMinimum > 0 && cropScaleMinimum <= cropScaleMaximum && cropScaleMaximum <= 1,
            "crop scales must satisfy 0 < minimum <= maximum <= 1")
        try require(colorJitter >= 0 && colorJitter <= 1, "color_jitter must be a probability in 0...1")
        try require(
            backgroundShift >= 0 && backgroundShift <= 1, "background_shift must be a probability in 0...1")
        try require(lossMinimumArea >= 0, "loss_minimum_area must be >= 0")
        try require(threads >= 0 && threads <= 1024, "threads must be in 0...1024")
        try require(
            replicas >= 0 && replicas <= 64 && (replicas == 0 || batchSize % replicas == 0),
            "replicas must be 0 (one per thread) or in 1...64 and divide batch_size (\(batchSize))")
        try require(
            replicas == 1 || !syncBatchNorm, "sync_batch_norm needs replicas 1 (replicas normalize their parts alone)")
        try require(["train", "test"].contains(validationSplit), "validation_split must be train or test")
        try require(
            validationInterval >= 0 && validationLimit >= 0, "validation_interval and validation_limit must be >= 0")
        try require(checkpointInterval >= 1, "checkpoint_interval must be >= 1")
        try require(logInterval >= 1, "log_interval must be >= 1")
        try require(
            lowResolutionSize == 0
                || (lowResolutionSize >= 16 && lowResolutionSize % 16 == 0 && lowResolutionSize <= inputSize),
            "low_resolution_size must be 0 (off) or a multiple of 16 in 16...input_size, is \(lowResolutionSize)")
        try require((0...1).contains(lowResolutionFraction), "low_resolution_fraction must be in 0...1")
        try require(
            relativeLossFloor > 0 && relativeLossFloor <= 65025, "relative_loss_floor must be in (0, 65025]")
        try require(
            (0..<1).contains(weightAverageDecay),
            "weight_average_decay must be in [0, 1) (0 = off), is \(weightAverageDecay)")
        try synthesis?.validate()
        _ = try modelConfiguration()
    }
}
