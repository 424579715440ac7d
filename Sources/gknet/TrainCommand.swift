// `gknet train`: a thin layer over GKNetTraining.Trainer, plus Ctrl-C handling.
import ArgumentParser
import Dispatch
import Foundation
import GKNetDataParallel
import GKNetTensorCore
import GKNetTraining

extension GKNetCommand {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train GKNet on an iHarmony4-layout dataset (resumable).",
            discussion: """
                Writes into --run-dir: config.json (the resolved configuration), log.jsonl (one line per step \
                and per validation), last.safetensors (the training checkpoint), best.safetensors (best \
                validation fMSE) and plot.png. Ctrl-C (SIGINT or SIGTERM) finishes the current step, saves \
                last.safetensors and exits 0; --resume continues exactly where it stopped. Every config key \
                is documented in docs/training.md.

                Data-parallel: `mpirun -np N gknet train ...` (same arguments) splits every batch over N \
                processes; rank 0 writes the run directory (docs/scaling.md).
                """)

        @Option(
            help:
                ArgumentHelp(
                    "An iHarmony4 root (all subsets) or one subset folder: its train list is trained on (unless "
                        + "--photos), its test list validates.")
        )
        var dataset: String?

        @Option(
            help:
                ArgumentHelp(
                    "Fresh composites: a folder of real photos; every sample of every epoch is a new composite (with "
                        + "--masks).")
        )
        var photos: String?

        @Option(help: "The object masks of --photos (same relative paths).")
        var masks: String?

        @Option(
            help:
                ArgumentHelp(
                    "With --photos: a hold-out list (gknet synthesize --holdout syntax); matching photos are not "
                        + "trained on.")
        )
        var exclude: String?

        @Option(name: .customLong("run-dir"), help: "Folder for the run's files (created if needed).")
        var runDir: String

        @Option(help: "Training configuration (JSON); defaults are in docs/training.md.")
        var config: String?

        @Flag(help: "Continue the run in --run-dir from last.safetensors.")
        var resume = false

        @Flag(
            help:
                ArgumentHelp(
                    "With --resume: continue even though the training or validation files differ from those the "
                        + "checkpoint was trained on (otherwise an error).")
        )
        var allowOtherData = false

        func validate() throws {
            if (photos == nil) != (masks == nil) { throw ValidationError("--photos and --masks go together") }
            if exclude != nil && photos == nil { throw ValidationError("--exclude needs --photos and --masks") }
            if allowOtherData && !resume { throw ValidationError("--allow-other-data goes with --resume") }
            if dataset == nil && photos == nil && !resume && config == nil {
                throw ValidationError("pass --dataset DIR, or --photos DIR --masks DIR")
            }
        }

        func run() throws {
            guard Communicator.isLaunchedByMPI else { return try train(communicator: .world) }
            // Under mpirun an error on one rank ends the whole job at once (the others would wait
            // for it in the next collective), and a finished job leaves MPI cleanly.
            let world = Communicator.world
            do {
                try train(communicator: world)
            } catch let disagreement as RankDisagreement {
                // Every rank knows it: one message (rank 0's), then every rank leaves with status 1.
                if world.isRoot { FileHandle.standardError.write(Data("error: \(disagreement)\n".utf8)) }
                world.finish()
                throw ExitCode.failure
            } catch {
                world.abort("\(error)")
            }
            world.finish()
        }

        func train(communicator: Communicator) throws {
            var requested = try config.map { try TrainingConfiguration.load(from: URL(fileURLWithPath: $0)) }
            if let photos, let masks {
                // Resuming with --photos and no --config: the saved configuration with these folders (it
                // still has to match the saved one, which the trainer checks).
                let saved = RunDirectory(URL(fileURLWithPath: runDir)).configurationURL
                let savedConfiguration =
                    resume && requested == nil && FileManager.default.fileExists(atPath: saved.path)
                    ? try TrainingConfiguration.load(from: saved) : nil
                var configuration = requested ?? savedConfiguration ?? TrainingConfiguration()
                var synthesis = configuration.synthesis ?? FreshCompositeSettings(photos: photos, masks: masks)
                synthesis.photos = photos
                synthesis.masks = masks
                if let exclude { synthesis.exclude = exclude }
                configuration.synthesis = synthesis
                try configuration.validate()
                requested = configuration
            }
            let trainer = try Trainer(
                configuration: requested, dataset: dataset.map { URL(fileURLWithPath: $0) },
                runDirectory: URL(fileURLWithPath: runDir), resume: resume, communicator: communicator,
                allowOtherData: allowOtherData)
            // The run's thread count (a resumed run's comes from its config.json): a process setting,
            // so the command makes it, before the first step.
            if trainer.configuration.threads > 0 { Threading.configure(threads: trainer.configuration.threads) }
            let stop = StopRequest()
            let result = try trainer.run(shouldStop: { stop.isRequested }) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            guard communicator.isRoot else { return }
            let best = result.bestValidationFMSE.map { String(format: ", best validation fMSE %.2f", $0) } ?? ""
            print(
                "\(result.interrupted ? "stopped" : "finished") at step \(result.lastStep)/\(result.totalSteps)"
                    + "\(best); files in \(runDir)"
            )
        }
    }
}

/// Turns SIGINT / SIGTERM into a flag the training loop polls after each step.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    init() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let second = self.requested
                self.requested = true
                self.lock.unlock()
                if second {
                    FileHandle.standardError.write(
                        Data("second interrupt: exiting without saving (the previous checkpoint is intact)\n".utf8))
                    exit(130)
                }
                FileHandle.standardError.write(
                    Data(
                        ("interrupt: finishing the current step, then saving last.safetensors (interrupt again to "
                            + "quit now)\n").utf8))
            }
            source.resume()
            sources.append(source)
        }
    }

    var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }
}
