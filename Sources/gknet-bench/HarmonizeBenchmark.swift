// `gknet-bench harmonize`: the `gknet harmonize` job end to end (JPEG decode, network at 256x256,
// full-resolution application, PNG encode and atomic write) on synthetic 2048x2048 and 4096x4096
// JPEG composites, with the paper preset at random weights (the speed does not depend on them).
//
//   gknet-bench harmonize [--threads T] [--runs N] [--sizes 2048,4096] [--preset paper] [--method local-affine]
//   gknet-bench harmonize --tune DATASET --model PATH [--grids 4,8,16] [--regularizations 1,4,16] [--limit N]
//
// --tune is the sweep behind docs/results.md "Full resolution": the network runs once per image
// (at its input size) and every full-resolution method and local-affine setting is scored on its
// output at the composite's resolution (fMSE / MSE / PSNR as `gknet evaluate --resolution full`),
// next to the same model at 256x256 (`gknet evaluate`'s default protocol).
//
// Per size: one cold run (first use of the network's buffers), then N timed runs; the median is
// reported with its stage breakdown. Peak RSS (getrusage) is read right after the 2048 runs, before
// any larger image is touched. The last line is the summary `make bench-harmonize` records.
import ArgumentParser
import Foundation
import GKNetDatasets
import GKNetEvaluation
import GKNetImageCodec
import GKNetInference
import GKNetModel
import GKNetTensorCore

struct HarmonizeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harmonize",
        abstract:
            "gknet harmonize end to end on 2048x2048 and 4096x4096 JPEG composites (paper preset); --tune: the "
            + "full-resolution sweep."
    )

    @Option(help: "Kernel threads.")
    var threads: Int = 2

    @Option(help: "Timed runs per size (after one cold run).")
    var runs: Int = 3

    @Option(help: "Comma-separated composite sizes (square).", transform: integers)
    var sizes: [Int] = [2048, 4096]

    @Option(help: "The model preset (random weights: speed does not depend on them).")
    var preset: String = "paper"

    @Option(help: "Full-resolution method: local-affine, upsampled-residual or naive-upsampling.")
    var method: String = FullResolutionMethod.localAffine.rawValue

    @Option(
        name: .customLong("tune"),
        help: "Tuning sweep over this dataset's test split instead of the speed benchmark (needs --model).")
    var tuneDataset: String?

    @Option(name: .customLong("model"), help: "With --tune: the checkpoint to sweep with.")
    var modelPath: String?

    @Option(help: "With --tune: comma-separated local-affine grid sizes.", transform: integers)
    var grids: [Int] = [4, 8, 16]

    @Option(help: "With --tune: comma-separated local-affine ridge weights.", transform: numbers)
    var regularizations: [Float] = [4]

    @Option(help: "With --tune: only the first N pairs (0 = all).")
    var limit: Int = 0

    func validate() throws {
        guard threads >= 1, runs >= 1, limit >= 0 else {
            throw ValidationError("--threads and --runs must be positive, --limit >= 0")
        }
        guard sizes.allSatisfy({ $0 >= 16 }) else { throw ValidationError("--sizes must be at least 16") }
        guard FullResolutionMethod(rawValue: method) != nil else {
            throw ValidationError(
                "--method must be one of \(FullResolutionMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if tuneDataset != nil, modelPath == nil { throw ValidationError("--tune needs --model") }
    }

    func run() throws {
        let method = FullResolutionMethod(rawValue: method)!
        Threading.configure(threads: threads)
        if let tuneDataset {
            return try Self.tune(
                dataset: tuneDataset, model: modelPath!, grids: grids, regularizations: regularizations, limit: limit)
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gknet-bench-harmonize-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }

        let harmonizer = Harmonizer(
            model: try GKNet(configuration: try GKNetConfiguration.preset(preset), seed: 0), method: method)
        print(
            "gknet-bench harmonize: preset \(preset), method \(method.rawValue), threads \(Threading.count), \(runs) "
                + "timed runs after 1 cold run"
        )
        var medians: [Int: Double] = [:]
        var rss2048: Double?
        for size in sizes {
            let (composite, mask) = try Self.makeInputs(size: size, in: folder)
            let jpegBytes = (try? FileManager.default.attributesOfItem(atPath: composite.path)[.size] as? Int) ?? 0
            let request = HarmonizeRequest(
                composite: composite, mask: mask, output: folder.appendingPathComponent("out\(size).png"))
            var reports: [HarmonizeReport] = []
            var totals: [Double] = []
            for run in 0...runs {
                let start = Measure.wallNow()
                let report = try HarmonizeJob.run(request, harmonizer: harmonizer)
                let seconds = Measure.wallNow() - start
                if run == 0 {
                    print(String(format: "  %dx%d cold run: %.3f s", size, size, seconds))
                } else {
                    reports.append(report)
                    totals.append(seconds)
                }
            }
            let median = Measure.medianIndex(totals)
            medians[size] = totals[median]
            let pngBytes = (try? FileManager.default.attributesOfItem(atPath: request.output.path)[.size] as? Int) ?? 0
            let report = reports[median]
            let stages = zip(report.timings, report.cpuSeconds).map {
                String(format: "%@ %.3f (cpu %.3f)", $0.0.stage, $0.0.seconds, $0.1)
            }.joined(separator: ", ")
            print(
                String(
                    format:
                        "  %dx%d (JPEG %.1f MB -> PNG %.1f MB): median %.3f s of %@ s\n    stages, wall (process CPU) "
                        + "s: %@",
                    size, size,
                    Double(jpegBytes) / 1e6, Double(pngBytes) / 1e6, totals[median],
                    totals.map { String(format: "%.3f", $0) }.joined(separator: " "), stages))
            if size == 2048 { rss2048 = Measure.peakResidentMegabytes() }
        }
        func seconds(_ size: Int) -> String { medians[size].map { String(format: "%.3f", $0) } ?? "n/a" }
        print(
            "bench-harmonize: s2048=\(seconds(2048)) rss2048_mb="
                + "\(rss2048.map { String(format: "%.0f", $0) } ?? "n/a") s4096=\(seconds(4096)) threads="
                + "\(Threading.count)"
        )
    }

    /// The full-resolution sweep (see the file header).
    static func tune(dataset path: String, model: String, grids: [Int], regularizations: [Float], limit: Int)
        throws
    {
        let dataset = try HarmonizationDataset(root: URL(fileURLWithPath: path), split: .test)
        let harmonizer = try ModelLoading.harmonizer(path: model)
        let size = harmonizer.networkSize
        var rows: [(label: String, method: FullResolutionMethod, settings: LocalAffineSettings)] = []
        for grid in grids {
            for regularization in regularizations {
                var settings = LocalAffineSettings()
                settings.gridSize = grid
                settings.regularization = regularization
                rows.append(("local-affine grid \(grid) reg \(regularization)", .localAffine, settings))
            }
        }
        rows.append(("upsampled-residual", .upsampledResidual, LocalAffineSettings()))
        rows.append(("naive-upsampling", .naiveUpsampling, LocalAffineSettings()))
        if harmonizer.model.configuration.output == .affine {
            rows.append(("upsampled-transform", .upsampledTransform, LocalAffineSettings()))
        }
        var accumulators = [MetricsAccumulator](repeating: MetricsAccumulator(), count: rows.count)
        var at256 = MetricsAccumulator()
        var identity = MetricsAccumulator()
        let count = limit > 0 ? min(limit, dataset.count) : dataset.count
        let start = Measure.wallNow()
        for index in 0..<count {
            let sample = try dataset.load(index)
            func score(_ prediction: PlanarImage, _ sample: Sample) -> ImageMetrics {
                imageMetrics(
                    prediction: prediction.values.map { $0 * 255 }, target: sample.target.values.map { $0 * 255 },
                    mask: sample.mask.values, height: sample.height, width: sample.width)
            }
            let (smallComposite, smallMask) = harmonizer.networkInputs(
                composite: sample.composite, mask: sample.mask)
            let prediction = harmonizer.predictWithTransforms(composites: [smallComposite], masks: [smallMask])[0]
            for (row, setting) in rows.enumerated() {
                let result = carryToFullResolution(
                    method: setting.method, composite: smallComposite, prediction: prediction.image,
                    mask: smallMask,
                    fullComposite: sample.composite, fullMask: sample.mask, settings: setting.settings,
                    transform: prediction.transform)
                accumulators[row].add(score(result, sample), subset: sample.reference.subset)
            }
            identity.add(score(sample.composite, sample), subset: sample.reference.subset)
            let small = sample.mapImages { $0.resized(width: size, height: size, filter: .bilinear) }
            at256.add(
                score(try harmonizer.harmonize(composite: small.composite, mask: small.mask), small),
                subset: sample.reference.subset)
            if (index + 1) % 10 == 0 || index + 1 == count {
                FileHandle.standardError.write(
                    Data(
                        String(
                            format: "tune: %d/%d images, %.0f s\n", index + 1, count,
                            Measure.wallNow() - start
                        ).utf8))
            }
        }
        print("full-resolution sweep: \(count) images of \(path), model \(model)")
        print("method".padding(toLength: 36, withPad: " ", startingAt: 0) + "      fMSE       MSE    PSNR")
        func line(_ label: String, _ summary: MetricsSummary) {
            print(
                label.padding(toLength: 36, withPad: " ", startingAt: 0)
                    + String(format: "%10.2f %9.2f %7.2f", summary.fmse, summary.mse, summary.psnr))
        }
        for (row, setting) in rows.enumerated() { line(setting.label, accumulators[row].all) }
        line("same model at \(size)x\(size)", at256.all)
        line("identity (composite) at full", identity.all)
    }

    /// A photo-like composite (smooth colour fields, edges and fine texture, so that the JPEG has a
    /// realistic size) saved as JPEG quality 90 4:2:0, and an elliptical mask (PNG) covering ~20 %.
    static func makeInputs(size: Int, in folder: URL) throws -> (URL, URL) {
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
        let composite = folder.appendingPathComponent("composite\(size).jpg"),
            maskURL = folder.appendingPathComponent("mask\(size).png")
        do {
            try ImageFile.write(image, to: composite, options: EncodeOptions(quality: 90, subsampling: .both))
            try ImageFile.write(mask, to: maskURL)
        } catch {
            throw BenchmarkError("cannot write the benchmark inputs: \(error)")
        }
        return (composite, maskURL)
    }
}
