// Resume after a real kill: `gknet train` is killed with SIGKILL between checkpoints (no
// cooperative stop, so the log runs ahead of the last checkpoint and must be cut back), resumed
// with --resume, and its finished log and checkpoint must equal an uninterrupted run's bit for bit,
// loader and schedule positions included. At 1 and 2 kernel threads (the thread count changes the
// rounding, a fixed count does not: every parallel loop splits its work by the count alone), on
// the dataset's fixed composites and on fresh composites with a validation between the last
// checkpoint and the kill (docs/robustness.md, "Tests that fail instead of hanging, skipping or testing old code").
import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

private let trainExecutable = builtExecutable("gknet")

/// The lines of a run's log.jsonl without the timing field (`images_per_second`), the one part
/// that differs between two runs that train identically.
func trainingLogWithoutTimings(_ runDirectory: URL) throws -> [String] {
    let text = try String(contentsOf: runDirectory.appendingPathComponent("log.jsonl"), encoding: .utf8)
    return text.split(separator: "\n").map {
        $0.replacingOccurrences(of: #","images_per_second":[0-9.]+"#, with: "", options: .regularExpression)
    }
}

/// One way to train: the kernel thread count, and fixed composites or fresh ones with validation.
struct ResumeScenario: CustomTestStringConvertible, Sendable {
    var threads: Int
    /// Fresh composites of the 4 sample photos (`--photos/--masks`), validated every 3 steps on
    /// Samples; else the Samples training list without validation.
    var freshComposites: Bool
    var testDescription: String {
        "\(threads) thread\(threads > 1 ? "s" : ""), "
            + (freshComposites ? "fresh composites + validation" : "fixed list")
    }
}

extension TrainingJobs {
    @Suite(.serialized, .enabled(if: runsExecutables(trainExecutable), "the gknet executable is not built"))
    struct KillResumeTests {
        static let scenarios = [
            ResumeScenario(threads: 1, freshComposites: false), ResumeScenario(threads: 2, freshComposites: false),
            ResumeScenario(threads: 2, freshComposites: true),
        ]

        static func configuration(_ scenario: ResumeScenario) -> String {
            let validation =
                scenario.freshComposites
                ? #""validation_interval": 3, "validation_dataset": "\#(samples.path)""# : #""validation_interval": 0"#
            return """
                {"preset": "tiny", "input_size": 32, "batch_size": 2, "steps": 12, \(validation),
                 "checkpoint_interval": 4, "log_interval": 100, "warmup_steps": 2, "seed": 5,
                 "threads": \(scenario.threads)}
                """
        }

        static let samples = Fixtures.repositoryRoot.appendingPathComponent("Samples")

        /// The 4 sample photos and their masks as `--photos` / `--masks` folders.
        static func photoFolders(in folder: URL) throws -> (photos: URL, masks: URL) {
            let photos = folder.appendingPathComponent("photos"), masks = folder.appendingPathComponent("masks")
            for created in [photos, masks] {
                try FileManager.default.createDirectory(at: created, withIntermediateDirectories: true)
            }
            for id in ["bucket", "moose", "panda", "solar-cooker"] {
                try FileManager.default.copyItem(
                    at: samples.appendingPathComponent("HGCompris/real_images/\(id).jpg"),
                    to: photos.appendingPathComponent("\(id).jpg"))
                try FileManager.default.copyItem(
                    at: samples.appendingPathComponent("HGCompris/masks/\(id)_1.png"),
                    to: masks.appendingPathComponent("\(id).png"))
            }
            return (photos, masks)
        }

        func train(_ runDirectory: URL, config: URL, data: [String], resume: Bool) throws -> Process {
            let process = Process()
            process.executableURL = try trainExecutable.require()
            process.arguments =
                ["train"] + data + ["--run-dir", runDirectory.path]
                + (resume ? ["--resume"] : ["--config", config.path])
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }

        /// Every line of a log.
        func lines(_ runDirectory: URL) throws -> [String] {
            let text = try String(contentsOf: runDirectory.appendingPathComponent("log.jsonl"), encoding: .utf8)
            return text.split(separator: "\n").map(String.init)
        }

        /// The step of a log line (`{"step":N,...`).
        func step(_ line: String) -> Int? {
            line.split(separator: ",").first.flatMap { Int($0.dropFirst("{\"step\":".count)) }
        }

        /// `--resume` with the same `--photos` / `--masks` and no `--config` continues with the saved
        /// configuration; other folders are an error that names what differs and how to resume.
        @Test func resumingWithTheSamePhotoFoldersNeedsNoConfig() throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gknet-resume-photos-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let (photos, masks) = try Self.photoFolders(in: folder)
            let config = folder.appendingPathComponent("config.json")
            let settings =
                #"{"preset": "tiny", "input_size": 64, "batch_size": 2, "steps": 4, "#
                + #""validation_interval": 0, "checkpoint_interval": 2, "warmup_steps": 1}"#
            try Data(settings.utf8).write(to: config)
            let runDirectory = folder.appendingPathComponent("run").path
            let executable = try trainExecutable.require()
            let data = ["--photos", photos.path, "--masks", masks.path, "--run-dir", runDirectory]
            let first = try run(executable, ["train"] + data + ["--config", config.path])
            #expect(first.status == 0, "\(first.standardError)")
            let resumed = try run(executable, ["train"] + data + ["--resume"])
            #expect(resumed.status == 0, "\(resumed.standardError)")
            #expect(resumed.standardError.contains("nothing to train"))
            let other = try run(
                executable,
                ["train", "--photos", masks.path, "--masks", masks.path, "--run-dir", runDirectory, "--resume"])
            #expect(other.status != 0)
            #expect(other.standardError.contains("resume with only --resume and --run-dir"))
        }

        @Test(arguments: scenarios)
        func killedRunResumesToTheUninterruptedResultBitForBit(_ scenario: ResumeScenario) async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gknet-kill-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let config = folder.appendingPathComponent("config.json")
            try Data(Self.configuration(scenario).utf8).write(to: config)
            let data: [String]
            if scenario.freshComposites {
                let (photos, masks) = try Self.photoFolders(in: folder)
                data = ["--photos", photos.path, "--masks", masks.path]
            } else {
                data = ["--dataset", Self.samples.path]
            }
            let straight = folder.appendingPathComponent("straight"), killed = folder.appendingPathComponent("killed")

            let reference = try train(straight, config: config, data: data, resume: false)
            try await reference.exits()
            #expect(reference.terminationStatus == 0)
            // The killed run repeats the reference's measured convolution backends: two processes that
            // measure on their own may choose differently, and the backends round differently.
            let planFile = "convolution-plan.json"
            let plan = try? Data(contentsOf: straight.appendingPathComponent(planFile))
            if ConvolutionBackend.isOneDNNAvailable {
                #expect(plan != nil, "the reference run recorded no \(planFile)")
            }
            if let plan {
                try FileManager.default.createDirectory(at: killed, withIntermediateDirectories: true)
                try plan.write(to: killed.appendingPathComponent(planFile))
            }

            // Kill as soon as the log shows a step after the first checkpoint that is not itself a
            // checkpoint (with validation: after a validation that followed the last checkpoint).
            let victim = try train(killed, config: config, data: data, resume: false)
            let deadline = Date().addingTimeInterval(300)
            var killedAt: String?
            while victim.isRunning && Date() < deadline {
                if let log = try? lines(killed), let last = log.last, let step = step(last), step >= 5, step % 4 != 0,
                    !scenario.freshComposites
                        || log.contains(where: { $0.contains("validation") && (self.step($0) ?? 0) > step / 4 * 4 })
                {
                    kill(victim.processIdentifier, SIGKILL)
                    killedAt = last
                    break
                }
                try await pause(milliseconds: 2)
            }
            try await victim.exits()
            try #require(killedAt != nil, "the run finished before it could be killed")
            #expect(victim.terminationReason == .uncaughtSignal)
            let checkpoint = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("last.safetensors"))
            let checkpointStep = Int(checkpoint.metadata[Checkpoint.stepKey] ?? "") ?? -1
            let logged = try lines(killed)
            #expect(
                logged.compactMap(step).max() ?? 0 > checkpointStep,
                "the log must run ahead of the checkpoint (killed at \(killedAt ?? ""))")
            if scenario.freshComposites {
                #expect(
                    logged.contains { $0.contains("validation") && (step($0) ?? 0) > checkpointStep },
                    "a validation must lie between the checkpoint (step \(checkpointStep)) and the kill: \(logged)")
            }

            // A resume takes everything from the run directory (config.json holds the photo folders).
            let resumed = try train(killed, config: config, data: scenario.freshComposites ? [] : data, resume: true)
            try await resumed.exits()
            #expect(resumed.terminationStatus == 0)

            // Both took the reference's choices and measured nothing new.
            #expect(plan == (try? Data(contentsOf: killed.appendingPathComponent(planFile))))
            let expected = try trainingLogWithoutTimings(straight)
            let actual = try trainingLogWithoutTimings(killed)
            #expect(expected.count >= 12 && expected == actual, "logs differ:\n\(expected)\n\(actual)")
            if scenario.freshComposites { #expect(expected.filter { $0.contains("validation") }.count == 4) }
            for file in ["last.safetensors"] + (scenario.freshComposites ? ["best.safetensors"] : []) {
                let a = try SafeTensorsFile(contentsOf: straight.appendingPathComponent(file))
                let b = try SafeTensorsFile(contentsOf: killed.appendingPathComponent(file))
                #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
                let differing = a.tensors.keys.sorted().filter { b.tensors[$0]?.values != a.tensors[$0]?.values }
                let examples = differing.prefix(3).joined(separator: ", ")
                #expect(
                    differing.isEmpty, "\(file): \(differing.count) of \(a.tensors.count) tensors differ (\(examples))")
                let keys =
                    file == "last.safetensors"
                    ? ["gknet.loader", "gknet.trainer", "gknet.data", Checkpoint.stepKey] : [Checkpoint.stepKey]
                for key in keys {
                    #expect(
                        a.metadata[key] == b.metadata[key],
                        "\(file) \(key): \(a.metadata[key] ?? "nil") vs \(b.metadata[key] ?? "nil")")
                }
            }
        }
    }
}
