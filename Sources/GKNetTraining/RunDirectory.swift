// The files of a training run: the resolved configuration (config.json), a JSONL log (log.jsonl),
// the latest training checkpoint (last.safetensors: model, optimizer, schedule position, data
// position), the best model by validation fMSE (best.safetensors), a plot of the curves
// (plot.png), and the measured backend of each training convolution (convolution-plan.json, so
// that a resumed run makes the same choices). Every file is written atomically (temporary file,
// then rename), so a kill at any moment leaves the previous version intact. One trainer owns a
// directory at a time; in a data-parallel run only rank 0 touches it.
import Foundation
import GKNetImageCodec
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

/// A training run's folder and the names of its files.
public struct RunDirectory: Sendable {
    public let url: URL

    public static let configurationFile = "config.json"
    public static let logFile = "log.jsonl"
    public static let lastCheckpoint = "last.safetensors"
    public static let bestCheckpoint = "best.safetensors"
    public static let plotFile = "plot.png"
    public static let convolutionPlanFile = "convolution-plan.json"

    public init(_ url: URL) { self.url = url }

    public var configurationURL: URL { url.appendingPathComponent(Self.configurationFile) }
    public var logURL: URL { url.appendingPathComponent(Self.logFile) }
    public var lastCheckpointURL: URL { url.appendingPathComponent(Self.lastCheckpoint) }
    public var bestCheckpointURL: URL { url.appendingPathComponent(Self.bestCheckpoint) }
    public var plotURL: URL { url.appendingPathComponent(Self.plotFile) }
    public var convolutionPlanURL: URL { url.appendingPathComponent(Self.convolutionPlanFile) }

    /// The run's configuration: the requested one for a new run (an error when the directory already
    /// holds a run), the saved one to resume (an error when `requested` differs from it); validated.
    func resolveConfiguration(_ requested: TrainingConfiguration?, resume: Bool) throws -> TrainingConfiguration {
        let existing: TrainingConfiguration? =
            FileManager.default.fileExists(atPath: configurationURL.path)
            ? try TrainingConfiguration.load(from: configurationURL) : nil
        let configuration: TrainingConfiguration
        if resume {
            guard let existing else {
                throw TrainingError(
                    "\(url.path): nothing to resume (no \(Self.configurationFile)); start without --resume")
            }
            if let requested, requested != existing {
                throw TrainingError(
                    "\(configurationURL.path): the run was started with another configuration (other "
                        + "settings, or other --photos / --masks / --exclude); resume with only --resume and "
                        + "--run-dir to use the saved one, or use a new --run-dir"
                )
            }
            // Without last.safetensors (killed before the first checkpoint) the run restarts at step 0.
            configuration = existing
        } else {
            if existing != nil {
                throw TrainingError(
                    "\(configurationURL.path): the run directory already holds a run; pass --resume to continue "
                        + "it, or choose a new --run-dir"
                )
            }
            configuration = requested ?? TrainingConfiguration()
        }
        try configuration.validate()
        return configuration
    }

    /// Creates the folder and clears what a killed run left.
    /// - Returns: the checkpoint to restore: `last.safetensors` when resuming and present.
    func prepare(resume: Bool) throws -> URL? {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        removeStaleTemporaryFiles()
        return resume && FileManager.default.fileExists(atPath: lastCheckpointURL.path) ? lastCheckpointURL : nil
    }

    /// Starts the log of a run at step 0, writing `configuration` first when it is new (a resumed run
    /// killed before its first checkpoint keeps its config.json).
    func startLog(newConfiguration configuration: TrainingConfiguration?) throws {
        if let configuration {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(configuration), to: configurationURL)
        }
        try AtomicFile.write(Data(), to: logURL)
    }

    /// A resumed run's log up to its checkpoint's `step` (later lines are dropped), rewritten in order.
    func truncateLog(atStep step: Int) throws -> TrainingHistory {
        let history = try TrainingHistory.read(from: logURL, upToStep: step)
        try history.write(to: logURL)
        return history
    }

    /// The log, open for appending records.
    func openLog() throws -> RunLog { try RunLog(url: logURL) }

    /// Writes `best.safetensors` (the model alone, as `gknet export` and `--model` read it).
    func saveBest(_ model: GKNet, step: Int) throws {
        try Checkpoint.save(model, to: bestCheckpointURL, configuration: model.configuration, step: step)
    }

    /// The run's measured convolution backends (`ConvolutionTuning.Plan`), nil when it has none.
    func readConvolutionPlan() throws -> ConvolutionTuning.Plan? {
        guard FileManager.default.fileExists(atPath: convolutionPlanURL.path) else { return nil }
        do {
            return try JSONDecoder().decode(ConvolutionTuning.Plan.self, from: Data(contentsOf: convolutionPlanURL))
        } catch {
            throw TrainingError(
                "\(convolutionPlanURL.path): unreadable convolution plan (\(error)); delete it to measure the "
                    + "backends again (the resumed run may then round differently from the interrupted one)")
        }
    }

    /// Writes convolution-plan.json.
    func writeConvolutionPlan(_ plan: ConvolutionTuning.Plan) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(plan), to: convolutionPlanURL)
    }

    /// Redraws plot.png; a plot that cannot be written does not stop the run.
    func savePlot(_ history: TrainingHistory) {
        try? ImageFile.write(TrainingPlot.render(history), to: plotURL)
    }

    /// Deletes the temporary files (`.<name>.<pid>.tmp`) of `AtomicFile` writes that a killed run
    /// left behind.
    func removeStaleTemporaryFiles() {
        let names = [
            Self.configurationFile, Self.logFile, Self.lastCheckpoint, Self.bestCheckpoint, Self.plotFile,
            Self.convolutionPlanFile,
        ]
        for file in (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        where file.hasSuffix(".tmp") && names.contains(where: { file.hasPrefix(".\($0).") }) {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(file))
        }
    }
}

/// log.jsonl open for appending: one line per training step and per validation.
final class RunLog {
    private let handle: FileHandle

    init(url: URL) throws {
        handle = try FileHandle(forWritingTo: url)
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    func append(_ record: TrainingLogRecord) throws {
        try handle.write(contentsOf: Data((record.jsonLine + "\n").utf8))
    }
}
