// `gknet-bench kernels`: median wall time (after warm-up) of the hot kernels, with GFLOP/s.
// The shapes match Scripts/bench_reference.py (PyTorch, numpy, ONNX Runtime); `make bench-kernels`
// runs both with the same thread count and prints them side by side (docs/benchmarks.md).
//
//   gknet-bench kernels [--threads T] [--tsv] [--only key1,key2] [--seconds S] [--cpu-time]
//                       [--wait-idle SECONDS] [--variants]
//
// --tsv prints `key<TAB>ms<TAB>gflops<TAB>label` lines for scripts; --seconds is the time budget
// per benchmark (at least 5 timed runs each); --cpu-time reports process CPU time instead of wall
// time (a load-robust proxy for 1-thread runs on a busy machine; never for the recorded numbers);
// --wait-idle waits (up to SECONDS) before each benchmark until the idle CPU capacity covers the
// thread count plus a margin, and reports the idle fraction it saw (the TSV's fifth column);
// --variants adds the same convolution on each backend and the backward pass split in halves.
import ArgumentParser
import Dispatch
import Foundation
import GKNetTensorCore

enum KernelBenchmarks {
    /// One benchmark: a key shared with bench_reference.py, a label, the floating-point operations
    /// per run (nil: report ms only), and a setup that returns the closure to time.
    struct Benchmark {
        var key: String
        var label: String
        var flops: Double?
        var setUp: () -> () -> Void
    }

}

/// The `kernels` subcommand: options, then the run over `KernelBenchmarks`.
struct KernelBenchmarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels", abstract: "GEMM, conv2d forward/backward and other hot kernels: median ms and GFLOP/s.")

    @Option(help: "Kernel threads (default: \(RuntimeSettings.Variable.threads.rawValue) or all cores).")
    var threads: Int = Threading.count

    @Flag(help: "Print key<TAB>ms<TAB>gflops<TAB>label<TAB>idle lines for scripts.")
    var tsv = false

    @Option(help: "Comma-separated benchmark keys to run (default: all).")
    var only: String?

    @Option(help: "Time budget per benchmark in seconds (at least 5 timed runs each).")
    var seconds: Double = 1

    @Flag(
        name: .customLong("cpu-time"),
        help:
            ArgumentHelp(
                "Report process CPU time instead of wall time (a load-robust proxy for 1-thread runs; never "
                    + "for recorded numbers).")
    )
    var cpuTime = false

    @Option(
        name: .customLong("wait-idle"),
        help: "Wait up to SECONDS before each benchmark until the idle CPU covers the thread count plus a margin.")
    var maximumIdleWait: Double = 0

    @Flag(help: "Also time the convolution on each backend and the backward pass split in halves.")
    var variants = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be positive") }
        guard seconds > 0, maximumIdleWait >= 0 else {
            throw ValidationError("--seconds must be positive and --wait-idle >= 0")
        }
    }

    func run() {
        Measure.usesCPUTime = cpuTime
        let only = self.only.map { Set($0.split(separator: ",").map(String.init)) }
        Threading.configure(threads: threads)
        let selected =
            (KernelBenchmarks.benchmarks() + (variants || only != nil ? KernelBenchmarks.backendVariants() : [])).filter
        { only?.contains($0.key) ?? true }
        if !tsv {
            print(
                "gknet-bench kernels: threads \(Threading.count), oneDNN "
                    + "\(ConvolutionBackend.isOneDNNAvailable ? "yes" : "no")"
            )
            let g = KernelBenchmarks.convGeometry(batch: 1)
            for pass in ["inference", "backwardData", "backwardWeights"] {
                print(
                    "  oneDNN \(pass) for \(g): \(oneDNNConvolutionImplementation(geometry: g, pass: pass) ?? "none")")
            }
        }
        for benchmark in selected {
            let body = benchmark.setUp()
            let idle =
                maximumIdleWait > 0
                ? Measure.waitForIdle(threads: Threading.count, maximumSeconds: maximumIdleWait) : nil
            let ms = Measure.medianMilliseconds(budget: seconds, body)
            let gflops = benchmark.flops.map { $0 / (ms * 1e6) }
            if tsv {
                let idleText = idle.map { format($0, 2) } ?? ""
                print(
                    "\(benchmark.key)\t\(format(ms, 4))\t"
                        + "\(gflops.map { format($0, 2) } ?? "")\t\(benchmark.label)\t\(idleText)"
                )
            } else {
                let rate = gflops.map { format($0, 1) + " GFLOP/s" } ?? ""
                print(
                    pad(benchmark.key, 22) + pad(benchmark.label, 48)
                        + pad(format(ms, 3) + " ms", 14, left: true) + "  " + rate)
            }
            fflush(nil)
        }
    }
}

extension KernelBenchmarks {
    // MARK: - The benchmarks

    /// conv2d 3x3, 64 -> 64 channels, 128 x 128, padding 1 (the issue's benchmark shape).
    static func convGeometry(batch: Int) -> ConvolutionGeometry {
        ConvolutionGeometry(
            batch: batch, inputChannels: 64, inputHeight: 128, inputWidth: 128, outputChannels: 64, kernelSize: 3,
            padding: 1)
    }

    static func benchmarks() -> [Benchmark] {
        var list: [Benchmark] = [
            sgemm(key: "sgemm_1024", m: 1024, n: 1024, k: 1024),
            sgemm(key: "sgemm_conv", m: 64, n: 16384, k: 576),
        ]
        for batch in [1, 8] {
            list.append(convForwardBenchmark(batch: batch))
            list.append(convBackwardBenchmark(batch: batch, backend: .automatic, suffix: ""))
        }
        list += otherOpBenchmarks()
        return list
    }

    /// The same conv through each backend (to justify `ConvolutionBackend.preferred`), and the two
    /// halves of the backward pass.
    static func backendVariants() -> [Benchmark] {
        var list: [Benchmark] = []
        let backends: [(ConvolutionBackend, String)] = [
            (.oneDNN(blockedLayout: true), "_onednn"), (.oneDNN(blockedLayout: false), "_plain"), (.im2col, "_im2col"),
            (.winograd, "_winograd"),
        ]
        for batch in [1, 8] {
            for (backend, suffix) in backends where batch == 1 || suffix == "_onednn" || suffix == "_winograd" {
                list.append(convForwardKernelBenchmark(batch: batch, backend: backend, suffix: suffix))
                list.append(convBackwardBenchmark(batch: batch, backend: backend, suffix: suffix))
            }
        }
        for (backend, suffix) in backends {
            list.append(convBackwardBenchmark(batch: 1, backend: backend, suffix: suffix, parts: (true, false)))
            list.append(convBackwardBenchmark(batch: 1, backend: backend, suffix: suffix, parts: (false, true)))
        }
        return list
    }

    static func sgemm(key: String, m: Int, n: Int, k: Int) -> Benchmark {
        Benchmark(key: key, label: "sgemm \(m)x\(n)x\(k)", flops: 2 * Double(m) * Double(n) * Double(k)) {
            let a = randomBuffer(m * k, seed: 1), b = randomBuffer(k * n, seed: 2)
            let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            return { BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: c, ldc: n) }
        }
    }

    /// The differentiable op in inference mode (output allocation included, like torch.no_grad()).
    static func convForwardBenchmark(batch: Int) -> Benchmark {
        let g = convGeometry(batch: batch)
        return Benchmark(key: "conv_fwd_b\(batch)", label: "conv2d fwd 3x3 64->64 128x128 N=\(batch)", flops: g.flops) {
            var generator = SplitMix64(seed: 3)
            let x = Tensor.uniform([batch, 64, 128, 128], low: -1, high: 1, generator: &generator)
            let w = Tensor.uniform([64, 64, 3, 3], low: -0.1, high: 0.1, generator: &generator)
            return { withoutGradient { consume(conv2d(x, weight: w, padding: 1)) } }
        }
    }

    /// The forward kernel on one backend (output allocated per run, as in the op).
    static func convForwardKernelBenchmark(batch: Int, backend: ConvolutionBackend, suffix: String) -> Benchmark {
        let g = convGeometry(batch: batch)
        return Benchmark(key: "conv_fwd_b\(batch)\(suffix)", label: "conv2d fwd N=\(batch) \(backend)", flops: g.flops)
        {
            let x = randomBuffer(g.inputCount, seed: 3), w = randomBuffer(g.weightCount, seed: 4)
            return {
                var out = [Float](unsafeUninitializedCapacity: g.outputCount) { _, count in count = g.outputCount }
                convolutionForward(output: &out, input: x, weight: w, bias: nil, geometry: g, backend: backend)
                consume(out)
            }
        }
    }

    /// Input and weight gradients from an output gradient (fresh buffers per run that the kernel
    /// overwrites, as the conv2d pullback does; PyTorch's counterpart is aten.convolution_backward).
    static func convBackwardBenchmark(
        batch: Int, backend: ConvolutionBackend, suffix: String, parts: (input: Bool, weight: Bool) = (true, true)
    ) -> Benchmark {
        let g = convGeometry(batch: batch)
        let name = suffix.isEmpty ? "" : " \(backend)"
        let (pass, what) =
            parts.input && parts.weight ? ("bwd", "dx+dw") : parts.input ? ("bwdd", "dx") : ("bwdw", "dw")
        let count = parts.input && parts.weight ? 2.0 : 1.0
        return Benchmark(
            key: "conv_\(pass)_b\(batch)\(suffix)", label: "conv2d bwd (\(what)) N=\(batch)\(name)",
            flops: count * g.flops
        ) {
            let x = randomBuffer(g.inputCount, seed: 3), w = randomBuffer(g.weightCount, seed: 4)
            let dOut = randomBuffer(g.outputCount, seed: 5)
            return {
                var dx = [Float](unsafeUninitializedCapacity: g.inputCount) { _, count in count = g.inputCount }
                var dw = [Float](unsafeUninitializedCapacity: g.weightCount) { _, count in count = g.weightCount }
                dx.withUnsafeMutableBufferPointer { dxp in
                    dw.withUnsafeMutableBufferPointer { dwp in
                        convolutionBackward(
                            dInput: parts.input ? dxp.baseAddress : nil, dWeight: parts.weight ? dwp.baseAddress : nil,
                            dBias: nil,
                            dOutput: dOut, input: x, weight: w, geometry: g, accumulate: false, backend: backend)
                    }
                }
                consume(dx)
                consume(dw)
            }
        }
    }

    /// applyPixelKernels, layerNorm and softmax: the op in inference mode (`_fwd`), and forward
    /// plus backward of the op's input (`_fwdbwd`, as PyTorch's `fn(x).backward(g)`).
    static func otherOpBenchmarks() -> [Benchmark] {
        let pixelFlops = 2.0 * 64 * 128 * 128 * 9
        let ops: [(key: String, label: String, flops: Double?, shapes: [[Int]], op: ([Tensor]) -> Tensor)] = [
            (
                "pixel", "applyPixelKernels 1x64x128x128 G8 K3", pixelFlops, [[1, 64, 128, 128], [1, 72, 128, 128]],
                { applyPixelKernels($0[0], kernels: $0[1], kernelSize: 3) }
            ),
            (
                "layernorm", "layerNorm 8x1024x256 over 256", nil, [[8, 1024, 256], [256], [256]],
                { layerNorm($0[0], normalizedShape: [256], weight: $0[1], bias: $0[2]) }
            ),
            ("softmax", "softmax 8x1024x1024 last axis", nil, [[8, 1024, 1024]], { $0[0].softmax(axis: -1) }),
        ]
        var list: [Benchmark] = []
        for op in ops {
            func inputs() -> [Tensor] {
                var generator = SplitMix64(seed: 9)
                return op.shapes.map { Tensor.uniform($0, low: -1, high: 1, generator: &generator) }
            }
            list.append(
                Benchmark(key: "\(op.key)_fwd", label: op.label + " fwd", flops: op.flops) {
                    let values = inputs()
                    return { withoutGradient { consume(op.op(values)) } }
                })
            list.append(
                Benchmark(key: "\(op.key)_fwdbwd", label: op.label + " fwd+bwd", flops: op.flops.map { 3 * $0 }) {
                    let values = inputs()
                    // Only the op's data inputs take gradients (weights stay constants, as in the reference).
                    let leaves = op.key == "layernorm" ? [values[0]] : values
                    for leaf in leaves { leaf.requiresGrad = true }
                    var generator = SplitMix64(seed: 10)
                    let seed = Tensor.uniform(values[0].shape, low: -1, high: 1, generator: &generator).data
                    return {
                        for leaf in leaves { leaf.grad = nil }
                        op.op(values).backward(seed: seed)
                    }
                })
        }
        return list
    }

    // MARK: - Timing and helpers

    /// A buffer of uniform values in [-1, 1), alive for the process (benchmarks are short-lived).
    static func randomBuffer(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
        var generator = SplitMix64(seed: seed)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        for i in 0..<count { buffer[i] = generator.nextUniform() * 2 - 1 }
        return buffer
    }
}
