import Foundation
// `gknet evaluate`: the iHarmony4 protocol (docs/evaluation.md). Composite, mask and target are resized
// to 256x256 (bilinear, not aspect-preserving; the mask resized as an image, so soft at edges),
// or kept at full resolution; predictions come from a model, saved images or a classic baseline;
// metrics are per image, then averaged per subset, per foreground band and over all images, and
// compared with the composite's own (images made worse, per composite-difficulty band).
import GKNetDatasets
import GKNetImageCodec
import GKNetInference

/// Where the predictions come from.
public enum PredictionSource {
    /// A trained network, through `Harmonizer.harmonize` with the harmonizer's options (the path
    /// `gknet harmonize` runs: at the network's size for the fixed resolution, carried to full
    /// resolution otherwise).
    case model(Harmonizer)
    /// Saved images `<folder>/<composite base name>.png` (or .jpg / .jpeg), any size.
    case directory(URL)
    /// A classic baseline computed on the fly.
    case baseline(ClassicBaseline)
}

/// The resolution metrics are computed at.
public enum EvaluationResolution: Equatable, Sendable {
    /// Every image resized to size x size (the papers' protocol uses 256).
    case fixed(Int)
    /// Each image at its own size.
    case full
}

public struct EvaluationOptions: Sendable {
    public var resolution: EvaluationResolution = .fixed(256)
    public var peak: PSNRPeak = .targetMax
    /// Evaluate at most this many images (0 = all), in list order.
    public var limit = 0
    /// Resize filter for the fixed resolution: bilinear reproduces the reference implementation.
    public var filter: ResizeFilter = .bilinear
    public var limits = DecodeLimits()
    /// Evaluate only this share of the (limited) list (`DatasetShard`: image k goes to share k mod n);
    /// the shards' `MetricsSummary.totals` add up to the whole list's.
    public var shard = DatasetShard.whole
    public init() {}
}

/// One image's result.
public struct PerImageResult: Codable, Sendable {
    public var subset: String
    public var name: String
    public var width: Int
    public var height: Int
    public var metrics: ImageMetrics
    /// The composite's own metrics against the real image (its fMSE is the image's difficulty).
    public var compositeMetrics: ImageMetrics
    /// Time to produce the prediction (network or baseline), milliseconds.
    public var milliseconds: Double

    /// The result's fMSE is above the composite's.
    public var isWorse: Bool { metrics.fmse > compositeMetrics.fmse }
    public var difficulty: CompositeDifficultyBand { CompositeDifficultyBand(compositeFMSE: compositeMetrics.fmse) }
}

/// Everything `gknet evaluate` reports.
public struct EvaluationReport: Codable, Sendable {
    public var source: String
    public var resolution: String
    public var peak: PSNRPeak
    public var all: MetricsSummary
    public var subsets: [String: MetricsSummary]
    public var bands: [String: MetricsSummary]
    public var subsetBands: [String: [String: MetricsSummary]]
    /// Results against their composites over all images (images made worse, median fMSE change);
    /// nil only for an empty shard.
    public var impact: ImpactSummary?
    /// The same per composite-difficulty band (`CompositeDifficultyBand` raw values; bands with images).
    public var impactByDifficulty: [String: ImpactSummary]
    public var millisecondsPerImage: Double
    public var perImage: [PerImageResult]

    /// A fixed-width table: one row per subset, then All, then the foreground-ratio bands. The
    /// first column is 14 characters wide, or as wide as the longest subset name.
    public func table() -> String {
        let labelWidth = max(14, subsets.keys.map(\.count).max() ?? 0)
        func row(_ label: String, _ s: MetricsSummary, _ ms: String) -> String {
            label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                + String(format: "%7d %10.2f %10.2f %8.2f ", s.count, s.mse, s.fmse, s.psnr)
                + rightAligned(ms, 10)
        }
        var lines = [
            "subset".padding(toLength: labelWidth, withPad: " ", startingAt: 0)
                + [
                    rightAligned("N", 7), rightAligned("MSE", 10), rightAligned("fMSE", 10), rightAligned("PSNR", 8),
                    rightAligned("ms/image", 10),
                ].joined(separator: " ")
        ]
        let timing = Dictionary(grouping: perImage, by: \.subset).mapValues {
            $0.map(\.milliseconds).reduce(0, +) / Double($0.count)
        }
        for subset in subsets.keys.sorted() {
            lines.append(row(subset, subsets[subset]!, String(format: "%.1f", timing[subset] ?? 0)))
        }
        lines.append(row("All", all, String(format: "%.1f", millisecondsPerImage)))
        for band in ForegroundBand.allCases {
            if let summary = bands[band.rawValue] { lines.append(row("fg " + band.rawValue, summary, "")) }
        }
        return lines.joined(separator: "\n")
    }

    /// What a user feels: the result against the composite over all images, then per composite-
    /// difficulty band (the composite's own fMSE): images, mean fMSE of result and composite, their
    /// ratio, images made worse, median per-image fMSE change.
    public func impactTable() -> String {
        func row(_ label: String, _ s: ImpactSummary) -> String {
            label.padding(toLength: 14, withPad: " ", startingAt: 0)
                + [
                    rightAligned("\(s.count)", 7), rightAligned(String(format: "%.2f", s.fmse), 10),
                    rightAligned(String(format: "%.2f", s.compositeFMSE), 10),
                    rightAligned(s.fmseRatio.map { String(format: "%.3fx", $0) } ?? "-", 8),
                    rightAligned(String(format: "%+.2f", s.psnrGain), 7),
                    rightAligned(String(format: "%d (%.1f %%)", s.worse, 100 * s.worseShare), 14),
                    rightAligned(String(format: "%+.1f", s.medianFMSEChange), 10),
                ].joined(separator: " ")
        }
        var lines = [
            "composite fMSE".padding(toLength: 14, withPad: " ", startingAt: 0)
                + [
                    rightAligned("N", 7), rightAligned("fMSE", 10), rightAligned("composite", 10),
                    rightAligned("ratio", 8), rightAligned("dPSNR", 7),
                    rightAligned("worse", 14), rightAligned("median d", 10),
                ].joined(separator: " ")
        ]
        if let impact { lines.append(row("overall", impact)) }
        for band in CompositeDifficultyBand.allCases {
            if let summary = impactByDifficulty[band.rawValue] { lines.append(row(band.rawValue, summary)) }
        }
        return lines.joined(separator: "\n")
    }

    /// One line for logs: "fMSE 0.813x the composite's, PSNR +0.80 dB, 80 of 220 images worse (36.4 %),
    /// median fMSE change -135.3" (`ImpactSummary.line`).
    public var impactLine: String { impact?.line ?? "no images" }

    /// Per-image CSV: subset,name,width,height,mse,fmse,psnr,foreground_ratio,milliseconds,
    /// composite_fmse,composite_psnr,difficulty.
    public func csv() -> String {
        var lines = [
            "subset,name,width,height,mse,fmse,psnr,foreground_ratio,milliseconds,composite_fmse,composite_psnr,"
                + "difficulty"
        ]
        for r in perImage {
            lines.append(
                "\(r.subset),\(r.name),\(r.width),\(r.height),\(r.metrics.mse),\(r.metrics.fmse),\(r.metrics.psnr),"
                    + "\(r.metrics.foregroundRatio),\(r.milliseconds),"
                    + "\(r.compositeMetrics.fmse),\(r.compositeMetrics.psnr),"
                    + "\(r.difficulty.rawValue)"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// Progress of a long evaluation: images done, total, seconds elapsed.
public typealias EvaluationProgress = (_ done: Int, _ total: Int, _ elapsed: Double) -> Void

/// Evaluates predictions against the dataset's real images.
public func evaluate(
    dataset: HarmonizationDataset, source: PredictionSource, options: EvaluationOptions = EvaluationOptions(),
    progress: EvaluationProgress? = nil
) throws -> EvaluationReport {
    let listed = options.limit > 0 ? min(options.limit, dataset.count) : dataset.count
    guard listed > 0 else {
        throw DatasetError("\(dataset.root.path): the \(dataset.split.rawValue) split lists no images")
    }
    let positions = Array(options.shard.positions(of: listed))
    let total = positions.count
    var accumulator = MetricsAccumulator()
    var results: [PerImageResult] = []
    let start = Date()
    var predictionTime = 0.0
    for (index, position) in positions.enumerated() {
        let reference = dataset.samples[position]
        var sample = try Sample.load(reference, limits: options.limits)
        if case .fixed(let size) = options.resolution {
            sample = sample.mapImages { $0.resized(width: size, height: size, filter: options.filter) }
        }
        let clock = Date()
        let prediction = try predict(source: source, sample: sample, options: options)
        let elapsed = Date().timeIntervalSince(clock) * 1000
        predictionTime += elapsed
        let target = sample.target.values.map { $0 * 255 }
        let metrics = imageMetrics(
            prediction: prediction.values.map { $0 * 255 }, target: target,
            mask: sample.mask.values, height: sample.height, width: sample.width, peak: options.peak)
        let compositeMetrics = imageMetrics(
            prediction: sample.composite.values.map { $0 * 255 }, target: target,
            mask: sample.mask.values, height: sample.height, width: sample.width, peak: options.peak)
        accumulator.add(metrics, subset: reference.subset)
        results.append(
            PerImageResult(
                subset: reference.subset, name: reference.name, width: sample.width, height: sample.height,
                metrics: metrics, compositeMetrics: compositeMetrics, milliseconds: elapsed))
        progress?(index + 1, total, Date().timeIntervalSince(start))
    }
    let sourceName: String
    switch source {
    case .model: sourceName = "model"
    case .directory(let url): sourceName = "predictions \(url.path)"
    case .baseline(let baseline): sourceName = "baseline \(baseline.rawValue)"
    }
    let resolutionName: String
    switch options.resolution {
    case .fixed(let size): resolutionName = "\(size)x\(size)"
    case .full: resolutionName = "full"
    }
    func impact(_ images: [PerImageResult]) -> ImpactSummary? {
        ImpactSummary(results: images.map(\.metrics), composites: images.map(\.compositeMetrics))
    }
    var impactByDifficulty: [String: ImpactSummary] = [:]
    for band in CompositeDifficultyBand.allCases {
        impactByDifficulty[band.rawValue] = impact(results.filter { $0.difficulty == band })
    }
    return EvaluationReport(
        source: sourceName, resolution: resolutionName, peak: options.peak, all: accumulator.all,
        subsets: accumulator.bySubset,
        bands: Dictionary(uniqueKeysWithValues: accumulator.byBand.map { ($0.key.rawValue, $0.value) }),
        subsetBands: accumulator.bySubsetAndBand.mapValues {
            Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) })
        },
        impact: impact(results), impactByDifficulty: impactByDifficulty,
        millisecondsPerImage: predictionTime / Double(max(total, 1)), perImage: results)
}

/// The prediction for one (already resized) sample, 3 x H x W in 0...1.
func predict(source: PredictionSource, sample: Sample, options: EvaluationOptions) throws -> PlanarImage {
    switch source {
    case .baseline(let baseline):
        return baseline.apply(composite: sample.composite, mask: sample.mask)
    case .model(let harmonizer):
        // the one path users run (`gknet harmonize`, the library, the web service): background kept exactly
        return try harmonizer.harmonize(composite: sample.composite, mask: sample.mask)
    case .directory(let folder):
        let stem = (sample.reference.name as NSString).deletingPathExtension
        let candidates = ["png", "jpg", "jpeg"].map { folder.appendingPathComponent("\(stem).\($0)") }
        guard let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw DatasetError(
                "\(candidates[0].path): no prediction for \(sample.reference.origin) (\(sample.reference.name))")
        }
        var image = try ImageFile.readRGB(file, limits: options.limits)
        if image.width != sample.width || image.height != sample.height {
            if case .full = options.resolution {
                throw DatasetError(
                    "\(file.path): prediction is \(image.width)x\(image.height) but the composite is "
                        + "\(sample.width)x\(sample.height)"
                )
            }
            image = image.resized(width: sample.width, height: sample.height, filter: options.filter)
        }
        return image
    }
}
