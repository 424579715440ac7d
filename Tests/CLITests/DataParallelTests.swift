// Data-parallel training under a real `mpirun -np 2` (docs/scaling.md):
// - exactness: 2 ranks x 4 images with sync_batch_norm train like 1 process x 8 images (losses and
//   weights within float round-off after 20 steps);
// - faults: killing one rank with SIGKILL ends the job with a non-zero status within a bounded
//   time, leaves the last checkpoint intact, and `--resume` with 2 ranks finishes exactly like an
//   uninterrupted 2-rank run (bit for bit).
// Skipped with a message when mpirun is missing, except under CI, where it is a failure.
import Foundation
import NeuralNet
import TensorCore
import Testing
import _TestSupport

private let gknet = builtExecutable("gknet")
private let mpirun: URL? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    .split(separator: ":")
    .map { URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") }
    .first { FileManager.default.isExecutableFile(atPath: $0.path) }

@Suite(
    .serialized,
    .enabled(
        if: (gknet != nil && mpirun != nil) || Fixtures.isCI, "mpirun (Open MPI) or the gknet executable is missing")
)
struct DataParallelTests {
    static let configuration = """
        {"preset": "tiny", "input_size": 32, "batch_size": 8, "steps": 20, "validation_interval": 0,
         "checkpoint_interval": 4, "log_interval": 100, "warmup_steps": 2, "seed": 5, "threads": 1,
         "sync_batch_norm": true}
        """

    /// A 12-image training set: the bundled samples twice, under two names.
    static func makeDataset(in folder: URL) throws -> URL {
        let source = Fixtures.repositoryRoot.appendingPathComponent("Samples/HGCompris")
        let root = folder.appendingPathComponent("data"), subset = root.appendingPathComponent("HGCompris")
        let fileManager = FileManager.default
        for part in ["composite_images", "masks", "real_images"] {
            try fileManager.createDirectory(at: subset.appendingPathComponent(part), withIntermediateDirectories: true)
        }
        var list: [String] = []
        for line in try String(contentsOf: source.appendingPathComponent("HGCompris_train.txt"), encoding: .utf8)
            .split(separator: "\n")
        {
            let composite = String(line)  // <photo>_<mask>_<k>.jpg
            let parts = composite.split(separator: "_")
            let photo = parts.dropLast(2).joined(separator: "_"), maskNumber = parts[parts.count - 2]
            for copy in ["", "copy"] {
                let renamed = photo + copy
                let pairs = [
                    ("composite_images/\(composite)", "composite_images/\(renamed)_\(maskNumber)_\(parts.last!)"),
                    ("masks/\(photo)_\(maskNumber).png", "masks/\(renamed)_\(maskNumber).png"),
                    ("real_images/\(photo).jpg", "real_images/\(renamed).jpg"),
                ]
                for (from, to) in pairs where !fileManager.fileExists(atPath: subset.appendingPathComponent(to).path) {
                    try fileManager.copyItem(
                        at: source.appendingPathComponent(from), to: subset.appendingPathComponent(to))
                }
                list.append(URL(fileURLWithPath: pairs[0].1).lastPathComponent)
            }
        }
        try Data((list.joined(separator: "\n") + "\n").utf8).write(
            to: subset.appendingPathComponent("HGCompris_train.txt"))
        return root
    }

    /// `gknet train` in one process, or under `mpirun -np ranks` (as root and oversubscribed if need be).
    func train(ranks: Int, dataset: URL, runDirectory: URL, config: URL, resume: Bool = false) throws -> Process {
        let process = Process()
        let arguments =
            ["train", "--dataset", dataset.path, "--run-dir", runDirectory.path]
            + (resume ? ["--resume"] : ["--config", config.path])
        if ranks == 1 {
            process.executableURL = try #require(gknet)
            process.arguments = arguments
        } else {
            process.executableURL = try #require(mpirun, "mpirun is missing: make deps installs openmpi-bin")
            process.arguments = ["-np", "\(ranks)", "--oversubscribe", try #require(gknet).path] + arguments
            var environment = ProcessInfo.processInfo.environment
            environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
            // Containers often forbid the cross-process memory copy (CMA) of the shared-memory transport.
            environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
            process.environment = environment
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func losses(_ runDirectory: URL) throws -> [Double] {
        try trainingLogWithoutTimings(runDirectory).compactMap { line in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["loss"] as? Double
        }
    }

    /// The model's tensors of a training checkpoint (optimizer state left out).
    func weights(_ runDirectory: URL) throws -> [String: [Float]] {
        let file = try SafeTensorsFile(contentsOf: runDirectory.appendingPathComponent("last.safetensors"))
        return file.tensors.filter { !$0.key.hasPrefix("__") }.mapValues(\.values)
    }

    /// The processes mpirun started (its children whose environment names an MPI rank), by rank.
    func ranks(of launcher: Process) -> [Int: pid_t] {
        var found: [Int: pid_t] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry),
                let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                status.contains("\nPPid:\t\(launcher.processIdentifier)\n"),
                let environment = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
            else { continue }
            for variable in environment.split(separator: 0) {
                let text = String(decoding: variable, as: UTF8.self)
                if text.hasPrefix("OMPI_COMM_WORLD_RANK="), let rank = Int(text.dropFirst(21)) { found[rank] = pid }
            }
        }
        return found
    }

    @Test func twoRanksTrainLikeOneProcessAndAKilledRankResumesExactly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-mpi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let dataset = try Self.makeDataset(in: folder)
        let config = folder.appendingPathComponent("config.json")
        try Data(Self.configuration.utf8).write(to: config)
        let single = folder.appendingPathComponent("single"), pair = folder.appendingPathComponent("pair")
        let killed = folder.appendingPathComponent("killed")

        // 1 process x 8 images vs 2 ranks x 4 images
        let one = try train(ranks: 1, dataset: dataset, runDirectory: single, config: config)
        one.waitUntilExit()
        try #require(one.terminationStatus == 0, "the one-process run failed")
        let two = try train(ranks: 2, dataset: dataset, runDirectory: pair, config: config)
        two.waitUntilExit()
        try #require(two.terminationStatus == 0, "the 2-rank run failed")
        let (lossesOne, lossesTwo) = (try losses(single), try losses(pair))
        #expect(lossesOne.count == 20 && lossesTwo.count == 20)
        for (step, (a, b)) in zip(lossesOne, lossesTwo).enumerated() {
            #expect(abs(a - b) <= 1e-5 * abs(a), "step \(step + 1): loss \(a) (1 process) vs \(b) (2 ranks)")
        }
        let (weightsOne, weightsTwo) = (try weights(single), try weights(pair))
        #expect(weightsOne.keys.sorted() == weightsTwo.keys.sorted() && !weightsOne.isEmpty)
        var difference = 0.0, norm = 0.0
        for (name, a) in weightsOne {
            guard let b = weightsTwo[name], b.count == a.count else { continue }
            for (x, y) in zip(a, b) {
                difference += Double(x - y) * Double(x - y)
                norm += Double(x) * Double(x)
            }
        }
        let relative = (difference / norm).squareRoot()
        #expect(relative <= 1e-5, "relative weight difference after 20 steps: \(relative)")

        // kill rank 1 between checkpoints, then resume with 2 ranks
        let victim = try train(ranks: 2, dataset: dataset, runDirectory: killed, config: config)
        let deadline = Date().addingTimeInterval(300)
        var killedAfter: Int?
        while victim.isRunning && Date() < deadline {
            let steps = (try? trainingLogWithoutTimings(killed))?.count ?? 0
            if steps >= 6 && steps % 4 != 0, let rank1 = ranks(of: victim)[1] {
                kill(rank1, SIGKILL)
                killedAfter = steps
                break
            }
            usleep(2_000)
        }
        try #require(killedAfter != nil, "the run finished before a rank could be killed")
        let killTime = Date()
        while victim.isRunning && Date().timeIntervalSince(killTime) < 60 { usleep(10_000) }
        let ended = !victim.isRunning
        if !ended { victim.terminate() }
        victim.waitUntilExit()
        #expect(ended, "the job did not end within 60 s of losing a rank")
        #expect(victim.terminationStatus != 0, "losing a rank must end the job with a non-zero status")
        let checkpoint = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("last.safetensors"))
        #expect(Int(checkpoint.metadata[Checkpoint.stepKey] ?? "").map { $0 >= 4 } == true)

        let resumed = try train(ranks: 2, dataset: dataset, runDirectory: killed, config: config, resume: true)
        resumed.waitUntilExit()
        #expect(resumed.terminationStatus == 0)
        #expect(
            try trainingLogWithoutTimings(killed) == (try trainingLogWithoutTimings(pair)),
            "the resumed run's log differs from the uninterrupted one")
        #expect(
            try weights(killed) == (try weights(pair)), "the resumed run's weights differ from the uninterrupted one")
    }
}
