// The training checkpoint (last.safetensors) of a run: the model, the optimizer, the schedule
// position, and in its metadata the data loader's position, the trainer's state and the data
// fingerprint, so that a resumed run continues bit for bit.
import Foundation
import GKNetDatasets
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

extension Trainer {
    /// Loads a training checkpoint (`last.safetensors`, or rank 0's copy of it).
    /// - Parameter checkingData: compare the run's data with the checkpoint's fingerprint (rank 0;
    ///   the other ranks' data already equals rank 0's).
    func restoreLast(from url: URL, checkingData: Bool) throws {
        let file = try SafeTensorsFile(contentsOf: url)
        if let saved = try Checkpoint.configuration(GKNetConfiguration.self, in: file), saved != model.configuration {
            throw TrainingError(
                "\(url.path): the checkpoint holds another model configuration than \(RunDirectory.configurationFile)")
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
        try weightAverage?.restore(from: file, model: model, source: url.path)
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
        var metadata = [
            Self.loaderKey: loaderText, Self.trainerKey: trainerText,
            Self.dataKey: String(decoding: try encoder.encode(dataFingerprint.summary), as: UTF8.self),
        ]
        let average = weightAverage?.checkpointState(of: model)
        metadata.merge(average?.metadata ?? [:]) { own, _ in own }
        try TrainingCheckpoint.save(
            to: files.lastCheckpointURL, model: model, optimizer: optimizer,
            scheduler: scheduler,
            step: step, configuration: model.configuration,
            metadata: metadata, auxiliary: average?.tensors ?? [:])
    }

}
