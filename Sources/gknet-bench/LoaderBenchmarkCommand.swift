// gknet-bench loader: decode + augment (random resized crop + flip) of training batches, without
// prefetch, in ms per batch -- to compare with the train-step time the loader must hide.
//   gknet-bench loader --dataset DIR [--threads T] [--batch 16] [--size 256] [--batches 8]
import Foundation
import Harmonization
import TensorCore

enum LoaderBenchmarkCommand {
    static func main(_ arguments: [String]) {
        var dataset: String?
        var threads = Threading.count, batch = 16, size = 256, batches = 8
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("missing value after \(arguments[index - 1])") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--dataset": dataset = value()
            case "--threads": threads = Int(value()) ?? { fail("--threads needs an integer") }()
            case "--batch": batch = Int(value()) ?? { fail("--batch needs an integer") }()
            case "--size": size = Int(value()) ?? { fail("--size needs an integer") }()
            case "--batches": batches = Int(value()) ?? { fail("--batches needs an integer") }()
            default: fail("unknown option \(arguments[index])")
            }
            index += 1
        }
        guard let dataset else { fail("--dataset DIR is required (an iHarmony4-layout folder, e.g. data/HGCompris)") }
        Threading.configure(threads: threads)
        do {
            let timing = try LoaderBenchmark.measure(datasetRoot: URL(fileURLWithPath: dataset), batchSize: batch, size: size, batches: batches)
            print("gknet-bench loader: \(timing)")
            print(String(format: "bench-loader: ms_per_batch=%.1f batch=%d size=%d threads=%d", timing.millisecondsPerBatch, timing.batchSize, size, Threading.count))
        } catch {
            fail("\(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("gknet-bench loader: \(message)\n".utf8))
        exit(2)
    }
}
