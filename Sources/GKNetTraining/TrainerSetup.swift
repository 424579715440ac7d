// How a run is assembled from its configuration: the training data (a dataset's train split or
// fresh composites), the validation split, the loader with its multi-resolution schedule, the
// optimizer and a fine-tuning start.
import Foundation
import GKNetDatasets
import GKNetModel
import GKNetNeuralNet
import GKNetSynthesis
import GKNetTensorCore

extension Trainer {
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
                    settings: synthesis, photos: photos, crop: TrainingAugmentation()))
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
    /// - Parameters:
    ///   - part: which slice of every batch this rank loads (docs/scaling.md).
    ///   - prefetch: make the next batch in the background during the step. Off when the step's
    ///     replicas keep every kernel thread busy: a background loader then takes its core time from
    ///     one replica while the others wait for it at the gradient average, and loading between
    ///     steps on all cores is faster (docs/benchmarks.md, "The loader between steps").
    static func makeLoader(
        _ configuration: TrainingConfiguration, training: TrainingData, totalSteps: Int, part: DatasetShard = .whole,
        prefetch: Bool = true
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
            batchSize: configuration.batchSize, seed: configuration.seed, shuffle: true, dropLast: true, epochs: nil,
            prefetch: prefetch)
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
}
