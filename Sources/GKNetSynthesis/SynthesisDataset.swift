import Dispatch
import Foundation
// `gknet synthesize`: photos + masks -> an iHarmony4 subset (composite_images/, masks/,
// real_images/, <Name>_train.txt, <Name>_test.txt, synthesis.json), split by whole photos.
import GKNetDatasets
import GKNetImageCodec
import GKNetTensorCore

/// Settings of a synthesis run.
public struct SynthesisOptions: Sendable {
    /// Composites per photo.
    public var perPhoto: Int = 4
    public var seed: UInt64 = 0
    /// The subset name: list files are `<name>_train.txt` / `<name>_test.txt`.
    public var name: String = "Synthetic"
    /// Share of photos put in the test split by a seeded draw (when no hold-out list is given).
    public var testFraction: Double = 0.1
    /// Photos for the test split by name or source folder (replaces the random draw).
    public var holdout: HoldoutList?
    /// Only photos matched by this list are used (nil: all).
    public var include: HoldoutList?
    /// Photos matched by this list are not used at all.
    public var exclude: HoldoutList?
    /// Format of composites and real images (masks are always PNG).
    public var format: ImageFormat = .jpeg
    public var encoding = EncodeOptions(quality: 95, subsampling: .none)
    /// Photos whose mask covers less or more of the image are skipped.
    public var maskFraction: ClosedRange<Float> = 0.01...0.9
    /// Photos (and masks) larger than this on their long side are first downscaled to it (area
    /// average; the mask is thresholded at 0.5 when written); nil keeps the size.
    public var maximumSide: Int?
    public var synthesizer = CompositeSynthesizer()
    public var limits = DecodeLimits()

    public init() {}
}

/// One written composite (a line of synthesis.json).
public struct CompositeRecord: Sendable, Codable {
    public var name: String
    public var photo: String
    public var split: DatasetSplit
    public var adjustment: Adjustment
    public var change: Float
    /// The composite's fMSE against the real image (`SynthesizedComposite.foregroundMSE`).
    public var fmse: Double
    /// Realistic difficulty: the drawn target fMSE.
    public var targetFMSE: Double?
    public var attempts: Int
}

/// What a run did.
public struct SynthesisSummary: Sendable, Codable {
    public var photosFound = 0
    public var trainPhotos = 0
    public var testPhotos = 0
    public var trainComposites = 0
    public var testComposites = 0
    /// Draws rejected for too little (or too much) change, over all accepted composites.
    public var rejectedDraws = 0
    /// Composites given up after every draw was rejected.
    public var failedComposites = 0
    /// Photos not used, with the reason.
    public var skipped: [String: String] = [:]
    public var compositesPerFamily: [String: Int] = [:]
    /// The composites' fMSE against their real images, per split ("train", "test") and band.
    public var difficulty: [String: DifficultyHistogram] = [:]
    public var seconds: Double = 0

    public var description: String {
        "\(trainComposites) train + \(testComposites) test composites from \(trainPhotos) + \(testPhotos) photos "
            + "(\(photosFound) found, \(skipped.count) skipped, \(rejectedDraws) draws rejected, "
            + "\(failedComposites) composites given up) in \(String(format: "%.1f", seconds)) s"
    }
}

public enum DatasetSynthesis {
    /// Which photos go to the test split: the hold-out list if given, else a seeded draw of
    /// `testFraction` of the photos (at least one when the fraction is positive and there are two
    /// or more photos).
    public static func testSelection(_ sources: [PhotoSource], options: SynthesisOptions) -> [Bool] {
        if let holdout = options.holdout { return sources.map { holdout.matches($0.relativePath) } }
        guard options.testFraction > 0, sources.count > 1 else { return sources.map { _ in false } }
        let count = min(sources.count - 1, max(1, Int((options.testFraction * Double(sources.count)).rounded())))
        var order = Array(sources.indices)
        var generator = DerivedSeed.generator(options.seed, 0x5350_4C54 /* "SPLT" */)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, generator.index(below: i + 1)) }
        var test = sources.map { _ in false }
        for i in order.prefix(count) { test[i] = true }
        return test
    }

    /// Runs the whole synthesis into `output` (created if needed); `log` receives progress lines.
    public static func run(
        photos: URL, masks: URL, output: URL, options: SynthesisOptions, log: (String) -> Void = { _ in }
    ) throws -> SynthesisSummary {
        let start = DispatchTime.now().uptimeNanoseconds
        guard options.perPhoto > 0 else { throw DatasetError("--per-photo must be positive (got \(options.perPhoto))") }
        guard !options.name.isEmpty, !options.name.contains("/") else {
            throw DatasetError("invalid subset name \"\(options.name)\"")
        }
        let (found, unmatched) = try discover(photos: photos, masks: masks)
        var summary = SynthesisSummary()
        summary.photosFound = found.count + unmatched.count
        for name in unmatched { summary.skipped[name] = "no mask with the same name under \(masks.path)" }
        var sources: [PhotoSource] = []
        for source in found {
            if let include = options.include, !include.matches(source.relativePath) {
                summary.skipped[source.relativePath] = "not in the --include list"
            } else if let exclude = options.exclude, exclude.matches(source.relativePath) {
                summary.skipped[source.relativePath] = "in the --exclude list"
            } else {
                sources.append(source)
            }
        }
        guard !sources.isEmpty else {
            throw DatasetError("\(photos.path): no photo (.png/.jpg/.jpeg) with a mask under \(masks.path)")
        }
        let ids = identifiers(for: sources)
        let isTest = testSelection(sources, options: options)
        log("synthesize: \(sources.count) photos with masks, \(isTest.filter { $0 }.count) held out for test")

        for folder in ["composite_images", "masks", "real_images"] {
            try FileManager.default.createDirectory(
                at: output.appendingPathComponent(folder), withIntermediateDirectories: true)
        }

        // Pass 1: foreground statistics of every usable photo (the colour-transfer references).
        let prepared = parallelMap(sources.count) { i in Result { try preparePhoto(sources[i], options: options) } }
        var statistics = [ForegroundStatistics?](repeating: nil, count: sources.count)
        for i in sources.indices {
            switch prepared[i] {
            case .success(let stats): statistics[i] = stats
            case .failure(let error): summary.skipped[sources[i].relativePath] = "\(error)"
            }
        }
        let referencesBySplit = [false, true].map { test in
            sources.indices.compactMap { isTest[$0] == test ? statistics[$0] : nil }
        }
        log("synthesize: statistics of \(statistics.compactMap { $0 }.count) photos measured")

        // Pass 2: composites, written as they are made.
        let extensionName = options.format == .png ? "png" : "jpg"
        let results = parallelMap(sources.count) { i -> Result<[CompositeRecord], Error>? in
            guard statistics[i] != nil else { return nil }
            let references = referencesBySplit[isTest[i] ? 1 : 0].filter { $0.name != sources[i].relativePath }
            return Result {
                try synthesizePhoto(
                    sources[i], id: ids[i], split: isTest[i] ? .test : .train, references: references,
                    output: output, extensionName: extensionName, options: options)
            }
        }
        var lists: [DatasetSplit: [String]] = [.train: [], .test: []]
        var records: [CompositeRecord] = []
        for i in sources.indices {
            guard let result = results[i] else { continue }
            switch result {
            case .failure(let error):
                summary.skipped[sources[i].relativePath] = "\(error)"
            case .success(let made):
                if isTest[i] { summary.testPhotos += 1 } else { summary.trainPhotos += 1 }
                summary.failedComposites += options.perPhoto - made.count
                for record in made {
                    lists[record.split, default: []].append(record.name)
                    summary.rejectedDraws += record.attempts - 1
                    summary.compositesPerFamily[record.adjustment.family.rawValue, default: 0] += 1
                }
                records += made
            }
        }
        summary.trainComposites = lists[.train]?.count ?? 0
        summary.testComposites = lists[.test]?.count ?? 0
        for split in DatasetSplit.allCases {
            summary.difficulty[split.rawValue] = DifficultyHistogram(
                fmse: records.filter { $0.split == split }.map(\.fmse))
        }
        for split in DatasetSplit.allCases {
            let text = (lists[split] ?? []).sorted().map { $0 + "\n" }.joined()
            try AtomicFile.write(
                Data(text.utf8), to: output.appendingPathComponent("\(options.name)_\(split.rawValue).txt"))
        }
        summary.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        try writeManifest(summary: summary, records: records, options: options, output: output)
        try AtomicFile.write(Data(difficultyTable(summary).utf8), to: output.appendingPathComponent("difficulty.tsv"))
        log("synthesize: \(summary.description)")
        for split in DatasetSplit.allCases {
            guard let histogram = summary.difficulty[split.rawValue], histogram.total > 0 else { continue }
            log("synthesize: \(split.rawValue) composite fMSE: \(histogram.description)")
        }
        return summary
    }

    /// Decodes a photo and its mask, checks them, and measures the foreground statistics.
    static func preparePhoto(_ source: PhotoSource, options: SynthesisOptions) throws -> ForegroundStatistics {
        let (photo, mask) = try load(source, options: options)
        return try measure(source, photo: photo, mask: mask, options: options)
    }

    /// Checks a loaded photo's mask coverage and measures its foreground statistics.
    static func measure(_ source: PhotoSource, photo: PlanarImage, mask: PlanarImage, options: SynthesisOptions) throws
        -> ForegroundStatistics
    {
        let fraction = mask.values.reduce(0) { $0 + ($1 > 0.5 ? 1 : 0) } / Float(mask.planeSize)
        guard options.maskFraction.contains(fraction) else {
            throw DatasetError(
                "\(source.mask.path): mask covers \(String(format: "%.1f", fraction * 100)) % of the photo, outside "
                    + "\(Int(options.maskFraction.lowerBound * 100))-\(Int(options.maskFraction.upperBound * 100)) %")
        }
        guard let statistics = ForegroundStatistics.measure(name: source.relativePath, photo: photo, mask: mask) else {
            throw DatasetError("\(source.mask.path): empty mask")
        }
        return statistics
    }

    static func load(_ source: PhotoSource, options: SynthesisOptions) throws -> (PlanarImage, PlanarImage) {
        let photo = try ImageFile.readRGB(source.photo, limits: options.limits)
        let mask = try ImageFile.readMask(source.mask, source: .first, limits: options.limits)
        guard photo.width == mask.width, photo.height == mask.height else {
            throw DatasetError(
                "\(source.mask.path) is \(mask.width)x\(mask.height) but photo \(source.photo.path) is "
                    + "\(photo.width)x\(photo.height)"
            )
        }
        if let side = options.maximumSide, max(photo.width, photo.height) > side {
            let scale = Double(side) / Double(max(photo.width, photo.height))
            let width = max(1, Int((Double(photo.width) * scale).rounded()))
            let height = max(1, Int((Double(photo.height) * scale).rounded()))
            return (
                photo.resized(width: width, height: height, filter: .area),
                mask.resized(width: width, height: height, filter: .area)
            )
        }
        return (photo, mask)
    }

    /// Writes the real image, the binary mask and up to `perPhoto` composites of one photo.
    static func synthesizePhoto(
        _ source: PhotoSource, id: String, split: DatasetSplit, references: [ForegroundStatistics],
        output: URL, extensionName: String, options: SynthesisOptions
    ) throws -> [CompositeRecord] {
        let (photo, mask) = try load(source, options: options)
        let synthesizer = options.synthesizer
        var records: [CompositeRecord] = []
        var usedReferences = Set<String>()
        for k in 1...options.perPhoto {
            var generator = DerivedSeed.generator(options.seed, DerivedSeed.hash(source.relativePath), UInt64(k))
            // each reference photo at most once per photo while unused ones remain
            let unused = references.filter { !usedReferences.contains($0.name) }
            guard
                let made = synthesizer.synthesize(
                    real: photo, mask: mask, references: unused.isEmpty ? references : unused, generator: &generator)
            else { continue }
            if let reference = made.adjustment.reference { usedReferences.insert(reference) }
            let name = "\(id)_1_\(records.count + 1).\(extensionName)"
            try ImageFile.write(
                made.composite, to: output.appendingPathComponent("composite_images/\(name)"),
                format: options.format, options: options.encoding)
            records.append(
                CompositeRecord(
                    name: name, photo: source.relativePath, split: split, adjustment: made.adjustment,
                    change: made.change, fmse: made.foregroundMSE, targetFMSE: made.targetFMSE,
                    attempts: made.attempts))
        }
        guard !records.isEmpty else { throw DatasetError("\(source.photo.path): every composite was rejected") }
        try ImageFile.write(
            photo, to: output.appendingPathComponent("real_images/\(id).\(extensionName)"),
            format: options.format, options: options.encoding)
        try ImageFile.write(
            synthesizer.binarized(mask), to: output.appendingPathComponent("masks/\(id)_1.png"), format: .png)
        return records
    }

    /// difficulty.tsv: per split and band the count and share of composites, and iHarmony4's share.
    static func difficultyTable(_ summary: SynthesisSummary) -> String {
        var lines = ["split\tband\tcount\tshare\tiharmony4_share"]
        for split in DatasetSplit.allCases {
            guard let histogram = summary.difficulty[split.rawValue], let median = histogram.medianFMSE else {
                continue
            }
            for band in CompositeDifficultyBand.allCases {
                let share = histogram.total == 0 ? 0 : Double(histogram.count(band)) / Double(histogram.total)
                lines.append(
                    "\(split.rawValue)\t\(band.rawValue)\t\(histogram.count(band))\t\(String(format: "%.4f", share))\t"
                        + "\(band.iHarmony4Share)")
            }
            lines.append("\(split.rawValue)\tmedian_fmse\t\(String(format: "%.2f", median))\t\t905")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    struct Manifest: Codable {
        var generator = "gknet synthesize"
        var name: String
        var seed: UInt64
        var perPhoto: Int
        var testFraction: Double?
        var holdout: [String]?
        var include: [String]?
        var exclude: [String]?
        var maximumSide: Int?
        var format: String
        var quality: Int
        var synthesizer: CompositeSynthesizer
        var summary: SynthesisSummary
        var composites: [CompositeRecord]
    }

    static func writeManifest(
        summary: SynthesisSummary, records: [CompositeRecord], options: SynthesisOptions, output: URL
    ) throws {
        let manifest = Manifest(
            name: options.name, seed: options.seed, perPhoto: options.perPhoto,
            testFraction: options.holdout == nil ? options.testFraction : nil, holdout: options.holdout?.patterns,
            include: options.include?.patterns, exclude: options.exclude?.patterns, maximumSide: options.maximumSide,
            format: options.format.rawValue, quality: options.encoding.quality, synthesizer: options.synthesizer,
            summary: summary, composites: records.sorted { $0.name < $1.name })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(manifest), to: output.appendingPathComponent("synthesis.json"))
    }

    /// `body(i)` for i in 0..<count on all cores, results in index order.
    static func parallelMap<T>(_ count: Int, _ body: (Int) -> T) -> [T] { concurrentMap(count, body) }
}
