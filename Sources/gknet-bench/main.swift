// gknet-bench: release-mode benchmarks (`swift build -c release`), one subcommand per family
// (`gknet-bench <subcommand> --help` lists each one's options):
//   kernels    GEMM, conv2d forward/backward and other hot kernels (KernelBenchmarks.swift)
//   model      GKNet presets at 256x256: inference and training step (ModelBenchmarks.swift)
//   memory     peak tensor memory and peak RSS (MemoryBenchmark.swift)
//   loader     decode + augment training batches (LoaderBenchmarkCommand.swift)
//   harmonize  gknet harmonize end to end at 2048 and 4096 (HarmonizeBenchmark.swift)
//   allreduce  gradient allreduce time per preset, under mpirun (AllreduceBenchmark.swift)
import ArgumentParser
import Foundation
import GKNetTensorCore

StartupEnvironment.prepare()
RuntimeSettings.current.apply()

struct GKNetBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gknet-bench",
        abstract: "Release-mode benchmarks of GKNet in Swift (docs/benchmarks.md).",
        subcommands: [
            KernelBenchmarksCommand.self, ModelBenchmarksCommand.self, MemoryBenchmark.self,
            LoaderBenchmarkCommand.self, HarmonizeBenchmark.self, AllreduceBenchmark.self,
        ])
}

/// `--sizes 2048,4096` style option values.
func integers(_ text: String) throws -> [Int] {
    try text.split(separator: ",").map { part in
        guard let value = Int(part.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("'\(part)' is not an integer")
        }
        return value
    }
}

/// `--regularizations 1,4,16` style option values.
func numbers(_ text: String) throws -> [Float] {
    try text.split(separator: ",").map { part in
        guard let value = Float(part.trimmingCharacters(in: .whitespaces)), value.isFinite else {
            throw ValidationError("'\(part)' is not a number")
        }
        return value
    }
}

GKNetBench.main()
