// `gknet-bench model`: the whole network, as a user runs it. For each preset (paper, small, tiny)
// at 256 x 256: batch-1 inference (eval mode, withoutGradient) and a batch-8 training step
// (forward + foreground MSE + backward + Adam). Median wall time after warm-up, GFLOP/s from the
// multiply-accumulates `gknet inspect` reports, and the peak RSS (VmHWM) of a process that runs
// only that case. Scripts/bench_model.py runs the PyTorch twin and ONNX Runtime on the same
// weights and inputs (`make bench-model`, docs/benchmarks.md "Model").
//
//   gknet-bench model [--threads T] [--cases paper-infer,small-train,...] [--runs N] [--warmup W]
//                     [--data DIR] [--tsv] [--wait-idle S] [--cpu-time]
//   gknet-bench model --write-data DIR     weights (paper/small/tiny.safetensors) and inputs for the twin
//
// Without --case each case runs in a child process of its own (so VmHWM is that case's peak);
// --case KEY runs one in this process. Case keys: <preset>-infer, <preset>-train, sgemm, attention
// (the fused token attention of paper's finest SCF level alone).
// Training GFLOP/s counts 3 x the forward FLOPs (forward, backward-data, backward-weights).
import ArgumentParser
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore
import GKNetTraining

enum ModelBenchmarks {
    /// Multiply-accumulates of one forward pass per image at 256 x 256, from `ModelInspection` (what
    /// `gknet inspect` prints: paper 19.182, small 5.011, tiny 1.419 G).
    static func gigaMACsPerImage(_ preset: String) -> Double? {
        guard let configuration = try? GKNetConfiguration.preset(preset),
            let inspection = try? ModelInspection(configuration: configuration, height: resolution, width: resolution)
        else { return nil }
        return Double(inspection.totalMACs) / 1e9
    }
    static let resolution = 256
    static let trainingBatch = 8
    static let defaultCases = [
        "sgemm", "paper-infer", "small-infer", "tiny-infer", "small-train", "tiny-train", "paper-train",
    ]

    /// The command's options (`ModelBenchmarksCommand`), handed to every case.
    typealias Options = ModelBenchmarksCommand

    /// Runs the cases of `options` (each in a child process unless `options.single` is set).
    static func run(_ options: Options) throws {
        Threading.configure(threads: options.threads)
        Measure.usesCPUTime = options.cpuTime
        if let single = options.single {
            let result = try runCase(single, options: options)
            print(result.tsvLine)
            reportConvolutionPlan()
            return
        }
        if !options.tsv {
            print(
                "gknet-bench model: \(resolution)x\(resolution), threads \(Threading.count), inference batch 1, "
                    + "training batch \(trainingBatch)"
            )
            print(
                pad("case", 14) + pad("median ms", 12, left: true) + pad("img/s", 10, left: true)
                    + pad("GFLOP/s", 10, left: true) + pad("peak RSS MB", 13, left: true) + pad("idle", 7, left: true))
        }
        for key in options.cases.split(separator: ",").map(String.init) {
            let line = try runChild(key, options: options)
            if options.tsv {
                print(line)
            } else if let result = CaseResult(tsvLine: line) {
                print(
                    pad(key, 14) + pad(format(result.milliseconds, 1), 12, left: true)
                        + pad(format(result.imagesPerSecond, 2), 10, left: true)
                        + pad(format(result.gflops, 1), 10, left: true)
                        + pad(format(result.peakMegabytes, 0), 13, left: true)
                        + pad(result.idle.map { format($0 * 100, 0) + "%" } ?? "", 7, left: true))
            } else {
                print(pad(key, 14) + "  failed: \(line)")
            }
            fflush(nil)
        }
    }

    /// The backends `ConvolutionTuning` chose for the case's training convolutions (stderr).
    static func reportConvolutionPlan() {
        let entries = ConvolutionTuning.shared.plan.entries
        guard !entries.isEmpty else { return }
        let onOneDNN = entries.filter { $0.choice == .oneDNN }.count
        var lines = ["convolution tuning: \(entries.count) geometries, \(onOneDNN) on oneDNN"]
        for entry in entries {
            let times = [entry.winogradSeconds, entry.oneDNNSeconds].map { $0.map { format($0 * 1000, 3) } ?? "-" }
            lines.append("  \(entry.key): \(entry.choice.rawValue) (Winograd \(times[0]) ms, oneDNN \(times[1]) ms)")
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    // MARK: - One case

    struct CaseResult {
        var key: String
        var milliseconds: Double
        var gflops: Double
        var peakMegabytes: Double
        var imagesPerSecond: Double
        var idle: Double?

        var tsvLine: String {
            [
                key, format(milliseconds, 3), format(gflops, 2), format(peakMegabytes, 1), format(imagesPerSecond, 3),
                idle.map { format($0, 2) } ?? "",
            ].joined(separator: "\t")
        }

        init(
            key: String, milliseconds: Double, gflops: Double, peakMegabytes: Double, imagesPerSecond: Double,
            idle: Double?
        ) {
            (self.key, self.milliseconds, self.gflops, self.peakMegabytes, self.imagesPerSecond, self.idle) =
                (key, milliseconds, gflops, peakMegabytes, imagesPerSecond, idle)
        }

        init?(tsvLine: String) {
            let fields = tsvLine.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 5, let ms = Double(fields[1]), let gf = Double(fields[2]), let mb = Double(fields[3]),
                let ips = Double(fields[4])
            else { return nil }
            self.init(
                key: fields[0], milliseconds: ms, gflops: gf, peakMegabytes: mb, imagesPerSecond: ips,
                idle: fields.count > 5 ? Double(fields[5]) : nil)
        }
    }

    /// Runs `key` in this process and measures it.
    static func runCase(_ key: String, options: Options) throws -> CaseResult {
        let idle =
            options.waitIdle > 0 ? Measure.waitForIdle(threads: Threading.count, maximumSeconds: options.waitIdle) : nil
        if let kernel = kernelCase(key, options: options, idle: idle) { return kernel }
        let parts = key.split(separator: "-").map(String.init)
        guard parts.count == 2, GKNetConfiguration.presetNames.contains(parts[0]),
            ["infer", "train", "train128"].contains(parts[1])
        else {
            throw BenchmarkError("unknown case \(key) (sgemm, attention, <paper|small|tiny>-<infer|train|train128>)")
        }
        let (preset, training) = (parts[0], parts[1].hasPrefix("train"))
        // train128: the training step of the multi-resolution schedule's low-resolution phase
        let size = parts[1] == "train128" ? 128 : resolution
        let model = try loadModel(preset: preset, data: options.data)
        let batch = training ? trainingBatch : 1
        let inputs = try loadInputs(batch: batch, size: size, data: options.data)
        let ms =
            training
            ? try trainingStepMilliseconds(model: model, inputs: inputs, options: options)
            : try inferenceMilliseconds(model: model, inputs: inputs, options: options)
        // The peak RSS is read before the MAC count, which traces a forward pass of a model of its own.
        let peakMegabytes = Measure.peakResidentMegabytes()
        let macs = (gigaMACsPerImage(preset) ?? .nan) * Double(size * size) / Double(resolution * resolution)
        let flops = 2 * macs * 1e9 * Double(batch) * (training ? 3 : 1)
        return CaseResult(
            key: key, milliseconds: ms, gflops: flops / (ms * 1e6), peakMegabytes: peakMegabytes,
            imagesPerSecond: Double(batch) / (ms / 1000), idle: idle)
    }

    /// The cases that time one kernel (sgemm, attention); nil for a model case.
    static func kernelCase(_ key: String, options: Options, idle: Double?) -> CaseResult? {
        if key == "sgemm" {
            let n = 1024
            let a = randomValues(n * n, seed: 1), b = randomValues(n * n, seed: 2)
            var c = [Float](repeating: 0, count: n * n)
            let ms = Measure.medianMilliseconds(runs: options.runs ?? 20, warmup: options.warmup ?? 3) {
                BLAS.sgemm(m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: &c, ldc: n)
            }
            return CaseResult(
                key: key, milliseconds: ms, gflops: 2 * Double(n * n * n) / (ms * 1e6),
                peakMegabytes: Measure.peakResidentMegabytes(), imagesPerSecond: 0, idle: idle)
        }
        if key == "attention" {
            // The finest SCF level of `paper`: 4 heads of 32, 128 x 128 positions, 256 tokens, values 64 wide.
            let (heads, positions, tokens) = (4, 128 * 128, 256)
            var generator = SplitMix64(seed: 5)
            let q = Tensor.uniform([1, heads, 32, positions], low: -1, high: 1, generator: &generator)
            let k = Tensor.uniform([1, heads, tokens, 32], low: -1, high: 1, generator: &generator)
            let v = Tensor.uniform([1, heads, tokens, 64], low: -1, high: 1, generator: &generator)
            let ms = Measure.medianMilliseconds(runs: options.runs ?? 20, warmup: options.warmup ?? 3) {
                withoutGradient { consume(tokenAttention(queries: q, keys: k, values: v, scale: 0.177)) }
            }
            let macs = Double(heads * positions * tokens * (32 + 64))
            return CaseResult(
                key: key, milliseconds: ms, gflops: 2 * macs / (ms * 1e6),
                peakMegabytes: Measure.peakResidentMegabytes(),
                imagesPerSecond: 0, idle: idle)
        }
        return nil
    }

    /// Median milliseconds of a training step (forward, foreground MSE, backward, Adam).
    /// With --replicas N the batch is split over N model replicas, one per thread (`ReplicatedTrainingStep`).
    static func trainingStepMilliseconds(model: GKNet, inputs: Inputs, options: Options) throws -> Double {
        model.train()
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-4)
        let step = try ReplicatedTrainingStep(model: model, count: options.replicas)
        let ms = Measure.medianMilliseconds(runs: options.runs ?? 3, warmup: options.warmup ?? 1) {
            _ = step.lossAndGradients { replica, part in
                let slice = { ReplicatedTrainingStep.slice($0, part: part, of: step.count) }
                let output = replica(composite: slice(inputs.composite), mask: slice(inputs.mask))
                return foregroundNormalizedMSE(output: output, target: slice(inputs.target), mask: slice(inputs.mask))
            }
            optimizer.step()
            step.shareWeights()
        }
        if OpProfiler.isEnabled {
            profileTrainingSteps(model: model, optimizer: optimizer, inputs: inputs, steps: 3)
        }
        return ms
    }

    /// Median milliseconds of a batch-1 inference (eval mode, without gradient); with op profiling on,
    /// the op table of a few more passes on stderr; with --write-output, the output tensor.
    static func inferenceMilliseconds(model: GKNet, inputs: Inputs, options: Options) throws -> Double {
        model.eval()
        let ms = Measure.medianMilliseconds(runs: options.runs ?? 10, warmup: options.warmup ?? 2) {
            withoutGradient { consume(model(composite: inputs.composite, mask: inputs.mask)) }
        }
        if OpProfiler.isEnabled {
            // With op profiling on (RuntimeSettings.profile): time per op over a few more passes, on stderr.
            let passes = 3
            OpProfiler.reset()
            let start = Measure.wallNow()
            for _ in 0..<passes {
                withoutGradient { consume(model(composite: inputs.composite, mask: inputs.mask)) }
            }
            let wall = (Measure.wallNow() - start) * 1e3 / Double(passes)
            let report = OpProfiler.report(runs: passes) + "\n" + format(wall, 2) + " ms per forward pass (wall)\n"
            FileHandle.standardError.write(Data(report.utf8))
        }
        if let path = options.writeOutput {
            let output = withoutGradient { model(composite: inputs.composite, mask: inputs.mask) }
            let file = SafeTensorsFile(tensors: ["output": NamedTensor(shape: output.shape, values: output.data)])
            do { try file.write(to: URL(fileURLWithPath: path)) } catch {
                throw BenchmarkError("cannot write \(path): \(error)")
            }
        }
        return ms
    }

    /// With op profiling on (`GKNET_PROFILE=1`): `steps` more training steps, each phase (zeroGrad,
    /// forward, loss, backward, optimizer) timed on its own, and the op table of each phase, on stderr.
    /// "untimed" is the phase's wall time not spent inside a profiled op (autograd bookkeeping,
    /// allocation outside ops, composed code between ops).
    static func profileTrainingSteps(model: GKNet, optimizer: Adam, inputs: Inputs, steps: Int) {
        var phases: [(name: String, milliseconds: Double, ops: [(name: String, calls: Int, milliseconds: Double)])] =
            []
        func phase(_ index: Int, _ name: String, _ body: () -> Void) {
            OpProfiler.reset()
            let start = OpProfiler.now()
            body()
            let ms = Double(OpProfiler.now() - start) / 1e6
            let ops = OpProfiler.snapshot()
            if phases.count <= index {
                phases.append((name, ms, ops))
                return
            }
            phases[index].milliseconds += ms
            var merged = Dictionary(phases[index].ops.map { ($0.name, ($0.calls, $0.milliseconds)) }) { a, _ in a }
            for op in ops {
                let previous = merged[op.name] ?? (0, 0)
                merged[op.name] = (previous.0 + op.calls, previous.1 + op.milliseconds)
            }
            phases[index].ops = merged.map { (name: $0.key, calls: $0.value.0, milliseconds: $0.value.1) }
        }
        for _ in 0..<steps {
            var output: Tensor?
            var loss: Tensor?
            phase(0, "zeroGrad") { model.zeroGrad() }
            phase(1, "forward") { output = model(composite: inputs.composite, mask: inputs.mask) }
            phase(2, "loss") {
                loss = foregroundNormalizedMSE(output: output!, target: inputs.target, mask: inputs.mask)
            }
            output = nil
            phase(3, "backward") { loss!.backward() }
            phase(4, "optimizer") { optimizer.step() }
            loss = nil
        }
        let total = phases.reduce(0) { $0 + $1.milliseconds } / Double(steps)
        let clock = OpProfiler.usesCPUTime ? "process CPU time" : "wall"
        var report = "training step profile, \(steps) steps, " + format(total, 2) + " ms per step (\(clock))\n"
        for (name, milliseconds, ops) in phases {
            let perStep = milliseconds / Double(steps)
            let timed = ops.reduce(0) { $0 + $1.milliseconds } / Double(steps)
            let share = format(100 * perStep / max(1e-9, total), 1)
            let (stepText, timedText, untimedText) = (format(perStep, 2), format(timed, 2), format(perStep - timed, 2))
            report += "phase \(name): \(stepText) ms (\(share) %), in profiled ops \(timedText) ms, "
            report += "untimed \(untimedText) ms\n"
        }
        for (name, _, ops) in phases where !ops.isEmpty {
            report += "\nops of phase \(name) (ms per step, calls per step):\n"
            for op in ops.sorted(by: { $0.milliseconds > $1.milliseconds }) {
                let calls = pad(String(op.calls / steps), 6, left: true)
                let time = pad(format(op.milliseconds / Double(steps), 3), 10, left: true)
                report += "  \(pad(op.name, 60))\(calls)\(time)\n"
            }
        }
        FileHandle.standardError.write(Data(report.utf8))
    }

    /// Runs `key` in a child process (this executable with --case) and returns its TSV line.
    static func runChild(_ key: String, options: Options) throws -> String {
        var arguments = [
            "model", "--case", key, "--threads", String(options.threads), "--wait-idle", String(options.waitIdle),
        ]
        if let runs = options.runs { arguments += ["--runs", String(runs)] }
        if let warmup = options.warmup { arguments += ["--warmup", String(warmup)] }
        if let data = options.data { arguments += ["--data", data] }
        if options.cpuTime { arguments.append("--cpu-time") }
        if options.replicas != 1 { arguments += ["--replicas", String(options.replicas)] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).absoluteURL
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { throw BenchmarkError("cannot start \(CommandLine.arguments[0]): \(error)") }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        return text.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
    }

    // MARK: - Model and inputs

    static func loadModel(preset: String, data: String?) throws -> GKNet {
        do {
            let model = try GKNet(configuration: GKNetConfiguration.preset(preset), seed: 7)
            if let data {
                try Checkpoint.load(
                    into: model, from: URL(fileURLWithPath: data).appendingPathComponent("\(preset).safetensors"))
            }
            return model
        } catch {
            throw BenchmarkError("cannot build the \(preset) model: \(error)")
        }
    }

    struct Inputs {
        var composite: Tensor, mask: Tensor, target: Tensor
    }

    /// The name of the input file of a batch and size (`inputs-b8.safetensors` at 256).
    static func inputFileName(batch: Int, size: Int) -> String {
        size == resolution ? "inputs-b\(batch).safetensors" : "inputs-b\(batch)-s\(size).safetensors"
    }

    /// The inputs of `--write-data` (or the same values generated in memory).
    static func loadInputs(batch: Int, size: Int = resolution, data: String?) throws -> Inputs {
        if let data {
            let url = URL(fileURLWithPath: data).appendingPathComponent(inputFileName(batch: batch, size: size))
            do {
                let file = try SafeTensorsFile(contentsOf: url)
                func tensor(_ name: String) throws -> Tensor {
                    guard let t = file.tensors[name] else { throw BenchmarkError("\(url.path) has no tensor \(name)") }
                    return Tensor(shape: t.shape, data: t.values)
                }
                return Inputs(
                    composite: try tensor("composite"), mask: try tensor("mask"), target: try tensor("target"))
            } catch {
                throw BenchmarkError("cannot read \(url.path): \(error)")
            }
        }
        return makeInputs(batch: batch, size: size)
    }

    /// Composite uniform in 0...1, a soft rectangular mask (about a quarter of the image), and a target
    /// that differs from the composite inside the mask.
    static func makeInputs(batch: Int, size s: Int = resolution) -> Inputs {
        var generator = SplitMix64(seed: 11)
        let composite = Tensor.uniform([batch, 3, s, s], low: 0, high: 1, generator: &generator)
        var mask = [Float](repeating: 0, count: batch * s * s)
        for n in 0..<batch {
            let top = s / 8 + 8 * n, left = 3 * s / 16 + 4 * n
            for y in top..<(top + s / 2) where y < s {
                for x in left..<(left + s / 2) where x < s { mask[(n * s + y) * s + x] = 1 }
            }
        }
        let noise = Tensor.uniform([batch, 3, s, s], low: -0.1, high: 0.1, generator: &generator)
        let target = withoutGradient { (composite + noise).clamped(min: 0, max: 1) }
        return Inputs(composite: composite, mask: Tensor(shape: [batch, 1, s, s], data: mask), target: target)
    }

    /// Writes the weights of every preset and the inputs, for Scripts/bench_model.py.
    static func writeData(directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            for preset in GKNetConfiguration.presetNames {
                let model = try loadModel(preset: preset, data: nil)
                // Non-zero kernel heads, so the harmony kernels modulate the decoder as in a trained model.
                var generator = SplitMix64(seed: 13)
                for (name, tensor) in model.namedParameters() where name.contains("kernel_head.conv2") {
                    tensor.data = Tensor.uniform(tensor.shape, low: -0.02, high: 0.02, generator: &generator).data
                }
                try Checkpoint.save(
                    model, to: url.appendingPathComponent("\(preset).safetensors"), configuration: model.configuration)
            }
            for (batch, size) in [(1, resolution), (trainingBatch, resolution), (trainingBatch, 128)] {
                let inputs = makeInputs(batch: batch, size: size)
                let file = SafeTensorsFile(tensors: [
                    "composite": NamedTensor(shape: inputs.composite.shape, values: inputs.composite.data),
                    "mask": NamedTensor(shape: inputs.mask.shape, values: inputs.mask.data),
                    "target": NamedTensor(shape: inputs.target.shape, values: inputs.target.data),
                ])
                try file.write(to: url.appendingPathComponent(inputFileName(batch: batch, size: size)))
            }
        } catch {
            throw BenchmarkError("cannot write the benchmark data to \(directory): \(error)")
        }
    }

    // MARK: - Helpers

    static func randomValues(_ count: Int, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return Tensor.uniform([count], low: -1, high: 1, generator: &generator).data
    }
}

/// The `model` subcommand: options, then `ModelBenchmarks.run`.
struct ModelBenchmarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "GKNet presets at 256x256: batch-1 inference and batch-8 training step, ms, GFLOP/s, peak RSS.")

    @Option(help: "Kernel threads (default: \(RuntimeSettings.Variable.threads.rawValue) or all cores).")
    var threads: Int = Threading.count

    @Option(help: "Comma-separated cases, each in a child process: <preset>-infer, <preset>-train, sgemm, attention.")
    var cases: String = ModelBenchmarks.defaultCases.joined(separator: ",")

    @Option(name: .customLong("case"), help: "Run one case in this process and print its TSV line.")
    var single: String?

    @Option(help: "Timed runs per case (default: 20 for sgemm/attention, 10 for inference, 3 for training).")
    var runs: Int?

    @Option(help: "Warm-up runs per case.")
    var warmup: Int?

    @Option(help: "Folder with the weights and inputs shared with the PyTorch twin (--write-data).")
    var data: String?

    @Flag(help: "Print one TSV line per case for scripts.")
    var tsv = false

    @Option(name: .customLong("wait-idle"), help: "Wait up to SECONDS before each case for an idle machine.")
    var waitIdle: Double = 0

    @Option(
        name: .customLong("write-output"),
        help: "With --case <preset>-infer: write the output tensor here (safetensors).")
    var writeOutput: String?

    @Flag(name: .customLong("cpu-time"), help: "Report process CPU time instead of wall time.")
    var cpuTime = false

    @Option(
        help: "Training cases: split the batch over N model replicas, one per thread (1: every kernel on all threads).")
    var replicas: Int = 1

    @Option(
        name: .customLong("write-data"),
        help: "Write weights (paper/small/tiny.safetensors) and inputs for the twin to this folder, then stop.")
    var writeData: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be positive") }
        if let runs, runs < 1 { throw ValidationError("--runs must be positive") }
        guard replicas >= 1, 8 % replicas == 0 else { throw ValidationError("--replicas must divide the batch of 8") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be >= 0") }
        guard waitIdle >= 0 else { throw ValidationError("--wait-idle must be >= 0") }
    }

    func run() throws {
        if let writeData { return try ModelBenchmarks.writeData(directory: writeData) }
        try ModelBenchmarks.run(self)
    }
}
