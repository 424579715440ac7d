// gknet-bench allreduce: the time of one gradient allreduce (MPI_Allreduce, sum of floats in place)
// for each preset's gradient size, as data-parallel training does once per step. Run it under
// mpirun (docs/scaling.md):
//   mpirun -np 2 .build/release/gknet-bench allreduce [--presets tiny,small,paper] [--repeats 50]
import ArgumentParser
import Foundation
import GKNetDataParallel
import GKNetModel

struct AllreduceBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Gradient allreduce time per preset's parameter count (run under mpirun).")

    @Option(help: "Presets whose gradient sizes to measure.")
    var presets: String = "tiny,small,paper"

    @Option(help: "Timed allreduces per size (after 5 warm-up ones); the median is reported.")
    var repeats: Int = 50

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be positive") }
    }

    func run() throws {
        let world = Communicator.world
        defer { world.finish() }
        guard world.isDistributed else {
            throw ValidationError(
                "run it under mpirun with 2 or more processes, e.g. mpirun -np 2 gknet-bench allreduce")
        }
        for preset in presets.split(separator: ",").map(String.init) {
            // +1: the loss travels in the same buffer
            let count = try GKNet(configuration: try GKNetConfiguration.preset(preset), seed: 0).parameterCount + 1
            var buffer = [Float](repeating: 1, count: count)
            var times: [Double] = []
            for iteration in 0..<(repeats + 5) {
                world.barrier()
                let seconds = Measure.seconds { buffer.withUnsafeMutableBufferPointer { world.sumInPlace($0) } }
                if iteration >= 5 { times.append(seconds) }
            }
            // every rank's time is the same collective; report the slowest rank's median
            var all = [Double](repeating: 0, count: world.size)
            all[world.rank] = Measure.median(times)
            world.sumInPlace(&all)
            let median = all.max() ?? 0
            guard world.isRoot else { continue }
            let bytes = Double(count * MemoryLayout<Float>.size)
            // ring allreduce moves 2 (N - 1) / N of the buffer through each link
            let busBandwidth = 2 * Double(world.size - 1) / Double(world.size) * bytes / median
            print(
                String(
                    format:
                        "allreduce %@: %d floats (%.2f MB) over %d ranks: %.3f ms (median of %d), bus bandwidth %.2f "
                        + "GB/s",
                    preset, count, bytes / 1e6, world.size, median * 1e3, repeats, busBandwidth / 1e9))
        }
    }
}
