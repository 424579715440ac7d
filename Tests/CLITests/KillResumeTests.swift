// Resume after a real kill: `gknet train` is killed with SIGKILL between checkpoints (no
// cooperative stop, so the log runs ahead of the last checkpoint and must be cut back), resumed
// with --resume, and its finished log and checkpoint must equal an uninterrupted run's bit for bit,
// loader and schedule positions included.
import Foundation
import NeuralNet
import TensorCore
import Testing
import _TestSupport

private let trainExecutable = builtExecutable("gknet")

/// The lines of a run's log.jsonl without the timing field (`images_per_second`), the one part
/// that differs between two runs that train identically.
func trainingLogWithoutTimings(_ runDirectory: URL) throws -> [String] {
    let text = try String(contentsOf: runDirectory.appendingPathComponent("log.jsonl"), encoding: .utf8)
    return text.split(separator: "\n").map {
        $0.replacingOccurrences(of: #","images_per_second":[0-9.]+"#, with: "", options: .regularExpression)
    }
}

@Suite(.serialized, .enabled(if: runsExecutables(trainExecutable), "the gknet executable is not built"))
struct KillResumeTests {
    static let configuration = """
        {"preset": "tiny", "input_size": 32, "batch_size": 2, "steps": 12, "validation_interval": 0,
         "checkpoint_interval": 4, "log_interval": 100, "warmup_steps": 2, "seed": 5, "threads": 1}
        """

    func train(_ runDirectory: URL, config: URL, resume: Bool) throws -> Process {
        let process = Process()
        process.executableURL = try trainExecutable.require()
        process.arguments =
            [
                "train", "--dataset", Fixtures.repositoryRoot.appendingPathComponent("Samples").path, "--run-dir",
                runDirectory.path,
            ]
            + (resume ? ["--resume"] : ["--config", config.path])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// (step, loss bits) of every training line of a log.
    func losses(_ runDirectory: URL) throws -> [String] {
        let text = try String(contentsOf: runDirectory.appendingPathComponent("log.jsonl"), encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }

    @Test func killedRunResumesToTheUninterruptedResultBitForBit() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("config.json")
        try Data(Self.configuration.utf8).write(to: config)
        let straight = folder.appendingPathComponent("straight"), killed = folder.appendingPathComponent("killed")

        let reference = try train(straight, config: config, resume: false)
        reference.waitUntilExit()
        #expect(reference.terminationStatus == 0)

        // kill as soon as the log shows a step after the first checkpoint that is not itself a checkpoint
        let victim = try train(killed, config: config, resume: false)
        let deadline = Date().addingTimeInterval(300)
        var killedAt: String?
        while victim.isRunning && Date() < deadline {
            if let lines = try? losses(killed), let last = lines.last,
                let step = last.split(separator: ",").first.flatMap({ Int($0.dropFirst("{\"step\":".count)) }),
                step >= 5 && step % 4 != 0
            {
                kill(victim.processIdentifier, SIGKILL)
                killedAt = last
                break
            }
            usleep(2_000)
        }
        victim.waitUntilExit()
        try #require(killedAt != nil, "the run finished before it could be killed")
        #expect(victim.terminationReason == .uncaughtSignal)
        let checkpoint = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("last.safetensors"))
        let checkpointStep = Int(checkpoint.metadata[Checkpoint.stepKey] ?? "") ?? -1
        #expect(
            try losses(killed).count > checkpointStep,
            "the log must run ahead of the checkpoint (killed at \(killedAt ?? ""))")

        let resumed = try train(killed, config: config, resume: true)
        resumed.waitUntilExit()
        #expect(resumed.terminationStatus == 0)

        let expected = try trainingLogWithoutTimings(straight)
        let actual = try trainingLogWithoutTimings(killed)
        #expect(expected.count >= 12 && expected == actual, "logs differ:\n\(expected)\n\(actual)")
        let a = try SafeTensorsFile(contentsOf: straight.appendingPathComponent("last.safetensors"))
        let b = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("last.safetensors"))
        #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted())
        for (name, tensor) in a.tensors { #expect(b.tensors[name]?.values == tensor.values, "\(name) differs") }
        for key in ["gknet.loader", "gknet.trainer", Checkpoint.stepKey] {
            #expect(
                a.metadata[key] == b.metadata[key], "\(key): \(a.metadata[key] ?? "nil") vs \(b.metadata[key] ?? "nil")"
            )
        }
    }
}
