// Data-parallel training under a real `mpirun -np 2` (docs/scaling.md):
// - exactness: 2 ranks x 4 images with sync_batch_norm train like 1 process x 8 images (losses and
//   weights within float round-off after 20 steps);
// - faults: killing one rank with SIGKILL ends the job with a non-zero status within a bounded
//   time, leaves the last checkpoint intact, and `--resume` with 2 ranks finishes exactly like an
//   uninterrupted 2-rank run (bit for bit).
// - agreement: two ranks given different data (an MPMD launch, one command line per rank) stop
//   before training, every rank with a non-zero status, within 60 s, with one message naming the
//   difference (a composite missing from rank 1's training list; rank 1 without a validation list).
// Skipped with a message when mpirun is missing, except under CI, where it is a failure.
import Foundation
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTestSupport
import Testing

private let gknet = builtExecutable("gknet")
private let mpirun: URL? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    .split(separator: ":")
    .map { URL(fileURLWithPath: String($0)).appendingPathComponent("mpirun") }
    .first { FileManager.default.isExecutableFile(atPath: $0.path) }

struct StoredTensor: Equatable {
    var shape: [Int]
    var values: [Float]
}

/// ‖a − b‖ / ‖a‖ over every tensor of two checkpoints, and every tensor that cannot be compared
/// (missing on one side, or of another shape): a problem, never skipped.
struct WeightComparison {
    var relative: Double
    var problems: [String]

    init(_ one: [String: StoredTensor], _ two: [String: StoredTensor]) {
        problems = []
        if one.isEmpty { problems.append("no tensors") }
        for name in Set(one.keys).symmetricDifference(two.keys).sorted() {
            problems.append("\(name) is only in the \(one[name] == nil ? "2-rank" : "1-process") checkpoint")
        }
        var difference = 0.0, norm = 0.0
        for (name, a) in one.sorted(by: { $0.key < $1.key }) {
            guard let b = two[name] else { continue }
            guard a.shape == b.shape, a.values.count == b.values.count else {
                problems.append("\(name): shape \(a.shape) (1 process) vs \(b.shape) (2 ranks)")
                continue
            }
            for (x, y) in zip(a.values, b.values) {
                difference += Double(x - y) * Double(x - y)
                norm += Double(x) * Double(x)
            }
        }
        relative = (difference / norm).squareRoot()
    }
}

@Suite struct WeightComparisonTests {
    /// A tensor of another shape (or missing) fails the comparison; it used to be skipped, so a
    /// 2-rank checkpoint with one truncated tensor passed.
    @Test func anotherShapeIsAProblemNotASkip() {
        let one = [
            "a": StoredTensor(shape: [2], values: [1, 2]), "b": StoredTensor(shape: [3], values: [1, 2, 3]),
        ]
        #expect(WeightComparison(one, one).problems.isEmpty && WeightComparison(one, one).relative == 0)
        var truncated = one
        truncated["b"] = StoredTensor(shape: [2], values: [1, 2])
        let comparison = WeightComparison(one, truncated)
        #expect(comparison.problems == ["b: shape [3] (1 process) vs [2] (2 ranks)"])
        #expect(comparison.relative == 0, "the tensors that agree still agree")
        truncated["b"] = nil
        #expect(WeightComparison(one, truncated).problems == ["b is only in the 1-process checkpoint"])
    }
}

extension TrainingJobs {
    @Suite(
        .serialized,
        .enabled(
            if: (gknet.exists && mpirun != nil) || Fixtures.isCI, "mpirun (Open MPI) or the gknet executable is missing"
        )
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
                try fileManager.createDirectory(
                    at: subset.appendingPathComponent(part), withIntermediateDirectories: true)
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
                    for (from, to) in pairs
                    where !fileManager.fileExists(atPath: subset.appendingPathComponent(to).path) {
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

        /// mpirun's environment: allowed as root (CI containers), shared memory without CMA.
        static var mpirunEnvironment: [String: String] {
            var environment = ProcessInfo.processInfo.environment
            environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
            environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
            // Containers often forbid the cross-process memory copy (CMA) of the shared-memory transport.
            environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
            // A one-process run would measure its convolution backends (ConvolutionTuning), ranks of a
            // data-parallel run do not: compare them on the same fixed rule.
            environment["GKNET_CONV_TUNING"] = "0"
            return environment
        }

        /// `gknet train` in one process, or under `mpirun -np ranks` (as root and oversubscribed if need be).
        func train(ranks: Int, dataset: URL, runDirectory: URL, config: URL, resume: Bool = false) throws -> Process {
            let process = Process()
            let arguments =
                ["train", "--dataset", dataset.path, "--run-dir", runDirectory.path]
                + (resume ? ["--resume"] : ["--config", config.path])
            if ranks == 1 {
                process.executableURL = try gknet.require()
                process.arguments = arguments
            } else {
                process.executableURL = try #require(mpirun, "mpirun is missing: make deps installs openmpi-bin")
                process.arguments = ["-np", "\(ranks)", "--oversubscribe", try gknet.require().path] + arguments
                process.environment = Self.mpirunEnvironment
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
        func weights(_ runDirectory: URL) throws -> [String: StoredTensor] {
            let file = try SafeTensorsFile(contentsOf: runDirectory.appendingPathComponent("last.safetensors"))
            return file.tensors.filter { !$0.key.hasPrefix("__") }.mapValues {
                StoredTensor(shape: $0.shape, values: $0.values)
            }
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

        /// Every process below `pid` (its children, theirs, ...).
        func descendants(of pid: pid_t) -> [pid_t] {
            var parents: [pid_t: pid_t] = [:]
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let child = pid_t(entry),
                    let status = try? String(contentsOfFile: "/proc/\(child)/status", encoding: .utf8),
                    let line = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }),
                    let parent = pid_t(line.dropFirst(5).trimmingCharacters(in: .whitespaces))
                else { continue }
                parents[child] = parent
            }
            var found: [pid_t] = [], frontier = [pid]
            while let next = frontier.popLast() {
                let children = parents.filter { $0.value == next }.map(\.key)
                found += children
                frontier += children
            }
            return found
        }

        /// Ends a job that ran past its time: SIGTERM to mpirun, and after 10 s SIGKILL to every
        /// process of the job (a rank blocked in a collective never reaches the check of the stop flag
        /// that gknet's SIGTERM handler sets, so mpirun alone cannot end it), then waits for mpirun.
        func stop(_ launcher: Process) async throws {
            launcher.terminate()
            if try await !launcher.exits(within: 10) {
                for pid in descendants(of: launcher.processIdentifier) { kill(pid, SIGKILL) }
                kill(launcher.processIdentifier, SIGKILL)
            }
            try await launcher.exits()
        }

        /// Waits for a training job; one still running after 300 s is stopped and fails the test.
        func finish(_ job: Process, _ label: String) async throws {
            if try await !job.exits(within: 300) {
                try await stop(job)
                Issue.record("\(label) ran past 300 s and was stopped")
            }
        }

        @Test func twoRanksTrainLikeOneProcessAndAKilledRankResumesExactly() async throws {
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
            try await finish(one, "the one-process run")
            try #require(one.terminationStatus == 0, "the one-process run failed")
            let two = try train(ranks: 2, dataset: dataset, runDirectory: pair, config: config)
            try await finish(two, "the 2-rank run")
            try #require(two.terminationStatus == 0, "the 2-rank run failed")
            let (lossesOne, lossesTwo) = (try losses(single), try losses(pair))
            #expect(lossesOne.count == 20 && lossesTwo.count == 20)
            for (step, (a, b)) in zip(lossesOne, lossesTwo).enumerated() {
                #expect(abs(a - b) <= 1e-5 * abs(a), "step \(step + 1): loss \(a) (1 process) vs \(b) (2 ranks)")
            }
            let comparison = WeightComparison(try weights(single), try weights(pair))
            #expect(comparison.problems.isEmpty, "\(comparison.problems.joined(separator: "; "))")
            #expect(comparison.relative <= 1e-5, "relative weight difference after 20 steps: \(comparison.relative)")

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
                try await pause(milliseconds: 2)
            }
            try #require(killedAfter != nil, "the run finished before a rank could be killed")
            let ended = try await victim.exits(within: 60)
            if !ended { try await stop(victim) }
            #expect(ended, "the job did not end within 60 s of losing a rank")
            #expect(victim.terminationStatus != 0, "losing a rank must end the job with a non-zero status")
            let checkpoint = try SafeTensorsFile(contentsOf: killed.appendingPathComponent("last.safetensors"))
            #expect(Int(checkpoint.metadata[Checkpoint.stepKey] ?? "").map { $0 >= 4 } == true)

            let resumed = try train(ranks: 2, dataset: dataset, runDirectory: killed, config: config, resume: true)
            try await finish(resumed, "the resumed 2-rank run")
            #expect(resumed.terminationStatus == 0)
            #expect(
                try trainingLogWithoutTimings(killed) == (try trainingLogWithoutTimings(pair)),
                "the resumed run's log differs from the uninterrupted one")
            #expect(
                try weights(killed) == (try weights(pair)),
                "the resumed run's weights differ from the uninterrupted one")
        }

        /// The bundled HGCompris subset copied to `folder/name` (6 training composites, 2 validation images).
        static func copyOfSamples(in folder: URL, _ name: String) throws -> URL {
            let copy = folder.appendingPathComponent(name)
            try FileManager.default.copyItem(
                at: Fixtures.repositoryRoot.appendingPathComponent("Samples/HGCompris"), to: copy)
            return copy
        }

        struct PerRankRun {
            var status: Int32
            var seconds: Double
            var finished: Bool
            var output: String
            /// Each rank's exit status, by rank (when recorded).
            var rankStatuses: [Int: Int32]
        }

        /// An MPMD launch, `mpirun -np 1 gknet train <arguments[0]> : -np 1 gknet train <arguments[1]>`,
        /// stopped after 60 s. With `recordingEachRank` every rank runs under a shell that writes its
        /// exit status to `folder/status.<rank>`, and mpirun lets every rank finish instead of stopping
        /// the others at the first non-zero status (so each status can be read).
        func launchPerRank(_ arguments: [[String]], in folder: URL, recordingEachRank: Bool) async throws -> PerRankRun
        {
            let gknetPath = try gknet.require().path
            let process = Process()
            process.executableURL = try #require(mpirun, "mpirun is missing: make deps installs openmpi-bin")
            var environment = Self.mpirunEnvironment
            let statusFolder = folder.appendingPathComponent("status-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: statusFolder, withIntermediateDirectories: true)
            var commandLine = ["--oversubscribe"]
            for (rank, rankArguments) in arguments.enumerated() {
                if rank > 0 { commandLine.append(":") }
                commandLine += ["-np", "1"]
                if recordingEachRank {
                    commandLine += [
                        "/bin/sh", "-c",
                        #""$0" "$@"; s=$?; echo $s > "$STATUS_FOLDER/status.$OMPI_COMM_WORLD_RANK"; exit $s"#,
                    ]
                }
                commandLine += [gknetPath, "train"] + rankArguments
            }
            if recordingEachRank {
                environment["STATUS_FOLDER"] = statusFolder.path
                environment["OMPI_MCA_orte_abort_on_non_zero_status"] = "0"
            }
            process.arguments = commandLine
            process.environment = environment
            let log = folder.appendingPathComponent("mpirun-\(UUID().uuidString).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            defer { try? handle.close() }
            process.standardOutput = handle
            process.standardError = handle
            let start = Date()
            try process.run()
            let finished = try await process.exits(within: 60)
            if !finished { try await stop(process) }
            var statuses: [Int: Int32] = [:]
            for rank in arguments.indices {
                let text = try? String(
                    contentsOf: statusFolder.appendingPathComponent("status.\(rank)"), encoding: .utf8)
                if let status = text.flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                    statuses[rank] = status
                }
            }
            return PerRankRun(
                status: process.terminationStatus, seconds: Date().timeIntervalSince(start), finished: finished,
                output: (try? String(contentsOf: log, encoding: .utf8)) ?? "", rankStatuses: statuses)
        }

        static let agreementConfiguration = """
            {"preset": "tiny", "input_size": 32, "batch_size": 2, "steps": 4, "validation_interval": 2,
             "checkpoint_interval": 2, "log_interval": 100, "warmup_steps": 2, "seed": 5, "threads": 1}
            """

        @Test func ranksWithDifferentDataStopWithOneMessage() async throws {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gknet-mpmd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let config = folder.appendingPathComponent("config.json")
            try Data(Self.agreementConfiguration.utf8).write(to: config)
            let full = try Self.copyOfSamples(in: folder, "A")
            // B: the training list without its last composite (the files stay).
            let shorter = try Self.copyOfSamples(in: folder, "B")
            let list = shorter.appendingPathComponent("HGCompris_train.txt")
            let lines = try String(contentsOf: list, encoding: .utf8).split(separator: "\n")
            try Data((lines.dropLast().joined(separator: "\n") + "\n").utf8).write(to: list)
            // C: no validation list.
            let unvalidated = try Self.copyOfSamples(in: folder, "C")
            try FileManager.default.removeItem(at: unvalidated.appendingPathComponent("HGCompris_test.txt"))
            func arguments(_ dataset: URL, _ run: String) -> [String] {
                [
                    "--dataset", dataset.path, "--run-dir", folder.appendingPathComponent(run).path, "--config",
                    config.path,
                ]
            }

            // Every rank's own status, recorded by its shell (mpirun lets all ranks finish).
            let listed = try await launchPerRank(
                [arguments(full, "run-a"), arguments(shorter, "run-b")], in: folder, recordingEachRank: true)
            #expect(listed.finished, "the job with different training lists ran past 60 s:\n\(listed.output)")
            #expect(
                listed.rankStatuses == [0: 1, 1: 1], "each rank's exit status: \(listed.rankStatuses)\n\(listed.output)"
            )
            #expect(
                listed.output.contains("rank 1's training list has 5 composites, rank 0's 6"),
                "the message must name the difference:\n\(listed.output)")
            #expect(
                listed.output.contains("composite_images/panda_1_2.jpg"),
                "the missing composite is named:\n\(listed.output)")
            #expect(listed.output.components(separatedBy: "the ranks would train on different data").count == 2)
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("run-a/log.jsonl").path))

            // mpirun's default handling (stop at the first non-zero status): the job fails.
            let unlisted = try await launchPerRank(
                [arguments(full, "run-c"), arguments(unvalidated, "run-d")], in: folder, recordingEachRank: false)
            #expect(unlisted.finished, "the job with a missing validation list ran past 60 s:\n\(unlisted.output)")
            #expect(unlisted.status != 0, "mpirun must fail when the ranks disagree")
            #expect(
                unlisted.output.contains("rank 1 has no validation list, rank 0's has 2 images"),
                "the message must name the difference:\n\(unlisted.output)")
            print("ranks with different data: stopped after \(listed.seconds) s and \(unlisted.seconds) s")
        }
    }
}
