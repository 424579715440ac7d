import ArgumentParser
// `gknet-bench memory`: peak memory of one `paper` inference forward at 256x256 (batch 1) and of one
// `small` training step (batch 8, 256x256, Adam): the peak of live tensor storage counted by
// MemoryStatistics and the process's peak resident set (VmHWM of /proc/self/status, reset before
// each phase through /proc/self/clear_refs). Results: docs/benchmarks.md, "Model memory".
//
//   gknet-bench memory [--threads T] [--phase inference|training|all] [--size N]
//
// Issue 8 acceptance: the inference tensor peak stays under 1.5 GB.
import Dispatch
import Foundation
import GKNetModel
import GKNetNeuralNet
import GKNetTensorCore

struct MemoryBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Peak tensor memory and peak RSS: paper inference forward, small training step.")

    @Option(help: "Kernel threads (default: \(RuntimeSettings.Variable.threads.rawValue) or all cores).")
    var threads: Int = Threading.count

    @Option(help: "inference, training or all.")
    var phase: String = "all"

    @Option(help: "Input size (a multiple of 16).")
    var size: Int = 256

    func validate() throws {
        guard ["inference", "training", "all"].contains(phase) else {
            throw ValidationError("--phase is inference, training or all")
        }
        guard size >= 16, size % 16 == 0 else { throw ValidationError("--size must be a multiple of 16") }
        guard threads >= 1 else { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        Threading.configure(threads: threads)
        print(
            "gknet-bench memory: threads \(Threading.count), \(size)x\(size); "
                + "VmHWM reset per phase: \(Measure.resetPeakResident() ? "yes" : "no (peak since process start)")")
        if phase != "training" { try Self.inference(size: size) }
        if phase != "inference" { try Self.training(size: size) }
    }

    /// One `paper` forward in evaluation mode without gradient recording.
    static func inference(size: Int) throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("paper"))
        model.eval()
        let (composite, mask, _) = inputs(batch: 1, size: size)
        let result = measure {
            MemoryStatistics.measurePeak { withoutGradient { model(composite: composite, mask: mask) }.count }.peakBytes
        }
        report("paper inference, batch 1", result, limit: 1_500_000_000)
    }

    /// One `small` training step: training-mode forward, loss, backward, Adam update.
    static func training(size: Int) throws {
        let model = try GKNet(configuration: try GKNetConfiguration.preset("small"))
        model.train()
        let optimizer = Adam(parameters: model.namedParameters(), learningRate: 1e-4)
        let (composite, mask, target) = inputs(batch: 8, size: size)
        let result = measure { () -> Int in
            let (loss, forwardPeak) = MemoryStatistics.measurePeak {
                foregroundNormalizedMSE(output: model(composite: composite, mask: mask), target: target, mask: mask)
            }
            loss.backward()
            optimizer.step()
            optimizer.zeroGrad()
            return forwardPeak
        }
        report("small training step, batch 8 (tensor peak = forward + loss, graph alive)", result, limit: nil)
    }

    struct MemoryMeasurement {
        var threadPeak: Int, processPeak: Int, residentBefore: Int, residentPeak: Int, seconds: Double
    }

    /// Runs `body` (which returns its thread tensor peak) with the process counters and VmHWM reset.
    static func measure(_ body: () -> Int) -> MemoryMeasurement {
        let liveBefore = MemoryStatistics.liveBytes
        let residentBefore = Measure.residentBytes("VmRSS") ?? 0
        Measure.resetPeakResident()
        MemoryStatistics.resetPeak()
        var threadPeak = 0
        let seconds = Measure.seconds { threadPeak = body() }
        return MemoryMeasurement(
            threadPeak: threadPeak, processPeak: MemoryStatistics.peakBytes - liveBefore,
            residentBefore: residentBefore, residentPeak: Measure.residentBytes("VmHWM") ?? 0, seconds: seconds)
    }

    static func report(_ title: String, _ m: MemoryMeasurement, limit: Int?) {
        print("\(title) (\(format(m.seconds, 2)) s)")
        var verdict = ""
        if let limit {
            verdict =
                m.threadPeak < limit
                ? "  [< \(format(Double(limit) / 1e9, 1)) GB: pass]"
                : "  [>= \(format(Double(limit) / 1e9, 1)) GB: FAIL]"
        }
        print("  tensor peak, this thread:    \(mib(m.threadPeak))\(verdict)")
        print("  tensor peak, whole process:  \(mib(m.processPeak))  (above the live tensors before: weights, inputs)")
        print("  VmRSS before / VmHWM during: \(mib(m.residentBefore)) / \(mib(m.residentPeak))")
    }

    static func inputs(batch: Int, size: Int) -> (Tensor, Tensor, Tensor) {
        var generator = SplitMix64(seed: 1)
        let composite = Tensor.uniform([batch, 3, size, size], generator: &generator)
        let target = Tensor.uniform([batch, 3, size, size], generator: &generator)
        var mask = [Float](repeating: 0, count: batch * size * size)
        for n in 0..<batch {
            for y in (size / 4)..<(size / 2) {
                for x in (size / 4)..<(3 * size / 4) { mask[(n * size + y) * size + x] = 1 }
            }
        }
        return (composite, Tensor(shape: [batch, 1, size, size], data: mask), target)
    }

    static func mib(_ bytes: Int) -> String { format(Double(bytes) / 1_048_576, 1) + " MiB" }
}
