// gknet-bench: release-mode benchmarks (`swift build -c release`), one subcommand per family:
//   gknet-bench kernels [--threads T] [--tsv] [--only KEY,...]   (KernelBenchmarks.swift)
//   gknet-bench model [--threads T] [--cases K,...] [--data DIR] [--tsv]      (ModelBenchmarks.swift)
// Later: `harmonize` (the end-to-end CLI job).
import Foundation
import TensorCore

OpenMPWaiting.preferPassiveWaiting()

let subcommands: [(name: String, summary: String, run: ([String]) -> Void)] = [
    ("kernels", "GEMM, conv2d forward/backward and other hot kernels: median ms and GFLOP/s", KernelBenchmarks.main),
    ("model", "GKNet presets at 256x256: batch-1 inference and batch-8 training step, ms, GFLOP/s, peak RSS", ModelBenchmarks.main),
    ("memory", "peak tensor memory and peak RSS: paper inference forward, small training step", MemoryBenchmark.main),
    ("loader", "decode + augment training batches (16 x 256x256): ms per batch", LoaderBenchmarkCommand.main),
    ("harmonize", "gknet harmonize end to end on 2048x2048 and 4096x4096 JPEG composites (paper preset)", HarmonizeBenchmark.main),
]

let arguments = Array(CommandLine.arguments.dropFirst())
if let name = arguments.first, let subcommand = subcommands.first(where: { $0.name == name }) {
    subcommand.run(Array(arguments.dropFirst()))
} else {
    print("usage: gknet-bench <subcommand> [options]\n")
    for subcommand in subcommands { print("  \(subcommand.name)\t\(subcommand.summary)") }
    exit(arguments.isEmpty || arguments.first == "--help" ? 0 : 2)
}
