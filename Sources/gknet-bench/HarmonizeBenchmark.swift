// `gknet-bench harmonize`: the `gknet harmonize` job end to end (JPEG decode, network at 256x256,
// full-resolution application, PNG encode and atomic write) on synthetic 2048x2048 and 4096x4096
// JPEG composites, with the paper preset at random weights (the speed does not depend on them).
//
//   gknet-bench harmonize [--threads T] [--runs N] [--sizes 2048,4096] [--preset paper] [--method local-affine]
//
// Per size: one cold run (first use of the network's buffers), then N timed runs; the median is
// reported with its stage breakdown. Peak RSS (getrusage) is read right after the 2048 runs, before
// any larger image is touched. The last line is the summary `make bench-harmonize` records.
import Foundation
import GKNetModel
import Harmonization
import ImageCodec
import TensorCore

enum HarmonizeBenchmark {
    static func main(_ arguments: [String]) {
        var threads = 2
        var runs = 3
        var sizes = [2048, 4096]
        var preset = "paper"
        var method = FullResolutionMethod.localAffine
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("missing value after \(arguments[index - 1])") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--threads": threads = Int(value()) ?? { fail("--threads needs an integer") }()
            case "--runs": runs = max(1, Int(value()) ?? { fail("--runs needs an integer") }())
            case "--sizes": sizes = value().split(separator: ",").map { Int($0) ?? { fail("--sizes needs integers") }() }
            case "--preset": preset = value()
            case "--method": method = FullResolutionMethod(rawValue: value()) ?? { fail("unknown --method") }()
            case let other: fail("unknown option \(other)")
            }
            index += 1
        }
        Threading.configure(threads: threads)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-bench-harmonize-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let harmonizer: Harmonizer
        do {
            harmonizer = Harmonizer(model: try GKNet(configuration: try GKNetConfiguration.preset(preset), seed: 0), method: method)
        } catch {
            fail("\(error)")
        }
        print("gknet-bench harmonize: preset \(preset), method \(method.rawValue), threads \(Threading.count), \(runs) timed runs after 1 cold run")
        var medians: [Int: Double] = [:]
        var rss2048: Double?
        for size in sizes {
            let (composite, mask) = makeInputs(size: size, in: folder)
            let jpegBytes = (try? FileManager.default.attributesOfItem(atPath: composite.path)[.size] as? Int) ?? 0
            let request = HarmonizeRequest(composite: composite, mask: mask, output: folder.appendingPathComponent("out\(size).png"))
            var reports: [HarmonizeReport] = []
            var totals: [Double] = []
            for run in 0...runs {
                let start = Date()
                do {
                    let report = try HarmonizeJob.run(request, harmonizer: harmonizer)
                    let seconds = Date().timeIntervalSince(start)
                    if run == 0 {
                        print(String(format: "  %dx%d cold run: %.3f s", size, size, seconds))
                    } else {
                        reports.append(report)
                        totals.append(seconds)
                    }
                } catch {
                    fail("\(error)")
                }
            }
            let order = totals.indices.sorted { totals[$0] < totals[$1] }
            let median = order[order.count / 2]
            medians[size] = totals[median]
            let pngBytes = (try? FileManager.default.attributesOfItem(atPath: request.output.path)[.size] as? Int) ?? 0
            let report = reports[median]
            let stages = zip(report.timings, report.cpuSeconds).map { String(format: "%@ %.3f (cpu %.3f)", $0.0.stage, $0.0.seconds, $0.1) }.joined(separator: ", ")
            print(String(format: "  %dx%d (JPEG %.1f MB -> PNG %.1f MB): median %.3f s of %@ s\n    stages, wall (process CPU) s: %@", size, size,
                         Double(jpegBytes) / 1e6, Double(pngBytes) / 1e6, totals[median],
                         totals.map { String(format: "%.3f", $0) }.joined(separator: " "), stages))
            if size == 2048 { rss2048 = peakResidentMegabytes() }
        }
        func seconds(_ size: Int) -> String { medians[size].map { String(format: "%.3f", $0) } ?? "n/a" }
        print("bench-harmonize: s2048=\(seconds(2048)) rss2048_mb=\(rss2048.map { String(format: "%.0f", $0) } ?? "n/a") s4096=\(seconds(4096)) threads=\(Threading.count)")
    }

    /// A photo-like composite (smooth colour fields, edges and fine texture, so that the JPEG has a
    /// realistic size) saved as JPEG quality 90 4:2:0, and an elliptical mask (PNG) covering ~20 %.
    static func makeInputs(size: Int, in folder: URL) -> (URL, URL) {
        var image = RasterImage8(width: size, height: size, layout: .rgb)
        var mask = RasterImage8(width: size, height: size, layout: .gray)
        let s = Float(size)
        image.samples.withUnsafeMutableBufferPointer { out in
            mask.samples.withUnsafeMutableBufferPointer { m in
                parallelChunks(size, minimumPerThread: 16) { rows in
                    for y in rows {
                        let v = Float(y) / s
                        for x in 0..<size {
                            let u = Float(x) / s
                            var hash = UInt32(truncatingIfNeeded: x &* 73856093 ^ y &* 19349663)
                            hash = (hash ^ (hash >> 13)) &* 1274126177
                            let noise = Float(hash & 255) / 255 - 0.5
                            let stripes: Float = sin(u * 90 + 8 * sin(v * 7)) > 0.6 ? 0.12 : 0
                            let r = 0.45 + 0.3 * sin(u * 5.1 + 1) * cos(v * 3.3) + stripes + 0.06 * noise
                            let g = 0.5 + 0.25 * cos(u * 2.7 - v * 4.1) + 0.05 * noise
                            let b = 0.4 + 0.3 * sin(v * 6.3 + u) - stripes + 0.07 * noise
                            out[(y * size + x) * 3] = UInt8(min(max(r, 0), 1) * 255 + 0.5)
                            out[(y * size + x) * 3 + 1] = UInt8(min(max(g, 0), 1) * 255 + 0.5)
                            out[(y * size + x) * 3 + 2] = UInt8(min(max(b, 0), 1) * 255 + 0.5)
                            let du = (u - 0.55) / 0.3, dv = (v - 0.5) / 0.22
                            m[y * size + x] = du * du + dv * dv <= 1 ? 255 : 0
                        }
                    }
                }
            }
        }
        let composite = folder.appendingPathComponent("composite\(size).jpg"), maskURL = folder.appendingPathComponent("mask\(size).png")
        do {
            try ImageFile.write(image, to: composite, options: EncodeOptions(quality: 90, subsampling: .both))
            try ImageFile.write(mask, to: maskURL)
        } catch {
            fail("cannot write the benchmark inputs: \(error)")
        }
        return (composite, maskURL)
    }

    /// Peak resident set size of this process so far, in MB (Linux reports kilobytes).
    static func peakResidentMegabytes() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / 1_048_576
        #endif
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("gknet-bench harmonize: \(message)\n".utf8))
        exit(2)
    }
}
