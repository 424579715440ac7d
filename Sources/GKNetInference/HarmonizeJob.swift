// `gknet harmonize` as a library call: one composite and mask from files to an output file (and an
// optional comparison sheet), with the paths checked first, the inputs read by the rules of
// ImageCodec's UserMask.swift, the image harmonized by `Harmonizer.harmonize` (the one path), and
// nothing left behind on failure (outputs are encoded in memory and written atomically, a temporary
// file renamed into place). Batch mode over a dataset split is Evaluation's HarmonizeBatch.swift.
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// The files of one harmonize job.
public struct HarmonizeRequest: Sendable {
    public var composite: URL
    public var mask: URL
    /// Where the result goes (.png keeps every pixel exactly; .jpg / .jpeg are accepted).
    public var output: URL
    /// Optional side-by-side sheet: composite, mask outline, result (and target).
    public var comparison: URL?
    /// Optional real image shown on the sheet.
    public var target: URL?

    public init(composite: URL, mask: URL, output: URL? = nil, comparison: URL? = nil, target: URL? = nil) {
        self.composite = composite
        self.mask = mask
        self.output = output ?? HarmonizeJob.defaultOutput(for: composite)
        self.comparison = comparison
        self.target = target
    }
}

/// What a finished job did.
public struct HarmonizeReport: Sendable {
    public var output: URL
    public var comparison: URL?
    public var width: Int
    public var height: Int
    public var foregroundRatio: Double
    /// Notes about how the inputs were read (a soft, coloured or resized mask...).
    public var warnings: [String]
    /// Seconds per stage: read, network, full resolution, encode, write.
    public var timings: [(stage: String, seconds: Double)]
    /// Process CPU seconds (all threads) per stage, same order.
    public var cpuSeconds: [Double]
    /// The share of the network's change kept (change scale x the change gate's factor; 0 = the
    /// composite returned as it is); nil when the model stores neither.
    public var changeKept: Float? = nil
}

/// Harmonizing files (see the file header).
public enum HarmonizeJob {
    /// `<composite stem>_harmonized.png` next to the composite.
    public static func defaultOutput(for composite: URL) -> URL {
        composite.deletingLastPathComponent().appendingPathComponent(
            composite.deletingPathExtension().lastPathComponent + "_harmonized.png")
    }

    /// Runs the whole job with an already loaded model.
    public static func run(
        _ request: HarmonizeRequest, harmonizer: Harmonizer, options: HarmonizeOptions = HarmonizeOptions()
    ) throws -> HarmonizeReport {
        try checkPaths(request)
        var clock = StageClock()
        let input = try readInput(composite: request.composite, mask: request.mask, options: options)
        clock.lap("read")
        return try finish(request, input: input, harmonizer: harmonizer, options: options, clock: &clock)
    }

    /// Harmonizes inputs already read and writes the files of `request`.
    public static func finish(
        _ request: HarmonizeRequest, input: HarmonizeInput, target: PlanarImage? = nil, harmonizer: Harmonizer,
        options: HarmonizeOptions = HarmonizeOptions(), clock: inout StageClock
    ) throws -> HarmonizeReport {
        var warnings = input.warnings
        let result = try harmonize(input, harmonizer: harmonizer, options: options, clock: &clock)
        var sheetTarget = target
        if sheetTarget == nil, let targetURL = request.target {
            sheetTarget = try ImageFile.readRGB(targetURL, limits: options.limits)
            if sheetTarget!.width != input.composite.width || sheetTarget!.height != input.composite.height {
                throw HarmonizeError(
                    "\(targetURL.path): target is \(sheetTarget!.width)x\(sheetTarget!.height) but composite "
                        + "\(request.composite.path) is \(input.composite.width)x\(input.composite.height)"
                )
            }
        }
        let format = ImageFormat(pathExtension: request.output.pathExtension) ?? .png
        if format == .jpeg && input.alpha != nil {
            warnings.append(
                "\(request.output.path): JPEG has no alpha channel: the composite's transparency is dropped (write "
                    + ".png to keep it)"
            )
        }
        let encoded = try encodeOutput(
            result, input: input, format: format, options: options, path: request.output.path)
        var sheet: Data?
        if let comparison = request.comparison {
            let image = ComparisonSheet.make(
                composite: input.composite, mask: input.mask, result: result, target: sheetTarget,
                panelSide: options.comparisonPanelSide)
            sheet = try ImageFile.encode(
                .eightBit(image.raster8()), format: ImageFormat(pathExtension: comparison.pathExtension) ?? .png,
                options: EncodeOptions(pngCompressionLevel: 6), path: comparison.path)
        }
        clock.lap("encode")
        try write(encoded, to: request.output)
        if let sheet, let comparison = request.comparison {
            do {
                try write(sheet, to: comparison)
            } catch {
                try? FileManager.default.removeItem(at: request.output)
                throw error
            }
        }
        clock.lap("write")
        return HarmonizeReport(
            output: request.output, comparison: request.comparison, width: input.composite.width,
            height: input.composite.height,
            foregroundRatio: input.foregroundRatio, warnings: warnings, timings: clock.laps,
            cpuSeconds: clock.cpuSeconds,
            changeKept: harmonizer.storesChangeAdjustment ? harmonizer.lastChangeKept : nil)
    }

    /// `Harmonizer.harmonize` (the one path) on inputs read by `readInput`, with the options of
    /// `options.harmonization` (nil = the harmonizer's), timing its stages on `clock`.
    /// Pixels whose mask is exactly 0 are returned exactly as in the composite.
    /// `betweenStages` runs after the network (a web request whose client went away stops there: it throws).
    public static func harmonize(
        _ input: HarmonizeInput, harmonizer: Harmonizer, options: HarmonizeOptions = HarmonizeOptions(),
        clock: inout StageClock, betweenStages: () throws -> Void = {}
    ) throws -> PlanarImage {
        try harmonizer.harmonize(
            composite: input.composite, mask: input.mask, options: options.harmonization,
            afterStage: { stage in
                clock.lap(stage.rawValue)
                if stage == .network { try betweenStages() }
            })
    }

    /// Encodes the result like the composite: its bit depth, and its alpha channel if it had one.
    public static func encodeOutput(
        _ result: PlanarImage, input: HarmonizeInput, format: ImageFormat, options: HarmonizeOptions, path: String
    ) throws -> Data {
        if format == .jpeg {
            return try ImageFile.encode(
                .eightBit(interleave(result, alpha: nil, as: UInt8.self)), format: .jpeg,
                options: EncodeOptions(quality: 95), path: path)
        }
        if input.bitDepth == 16 {
            return try ParallelPNG.encode(
                interleave(result, alpha: input.alpha, as: UInt16.self), level: options.pngCompressionLevel, path: path)
        }
        return try ParallelPNG.encode(
            interleave(result, alpha: input.alpha, as: UInt8.self), level: options.pngCompressionLevel, path: path)
    }

    /// RGB (or RGBA with `alpha`) integer samples: clamp to 0...1, scale, round half up.
    static func interleave<Sample>(_ image: PlanarImage, alpha: PlanarImage?, as: Sample.Type) -> RasterImage<Sample> {
        let channels = alpha == nil ? 3 : 4
        let plane = image.planeSize
        let maximum = RasterImage<Sample>.maximum
        let alphaValues = alpha?.values ?? []
        let samples = [Sample](unsafeUninitializedCapacity: plane * channels) { buffer, initialized in
            let out = buffer.baseAddress!
            image.values.withUnsafeBufferPointer { source in
                alphaValues.withUnsafeBufferPointer { alphaSource in
                    parallelChunks(plane, minimumPerThread: 1 << 16) { range in
                        for p in range {
                            for c in 0..<3 {
                                out[p * channels + c] = Sample(
                                    truncatingIfNeeded: Int32(min(max(source[c * plane + p], 0), 1) * maximum + 0.5))
                            }
                            if channels == 4 {
                                out[p * 4 + 3] = Sample(
                                    truncatingIfNeeded: Int32(min(max(alphaSource[p], 0), 1) * maximum + 0.5))
                            }
                        }
                    }
                }
            }
            initialized = plane * channels
        }
        return RasterImage(
            width: image.width, height: image.height, layout: channels == 4 ? .rgba : .rgb, samples: samples)
    }

    /// Atomic write (temporary sibling file, then rename); errors name the file.
    static func write(_ data: Data, to url: URL) throws {
        do {
            try AtomicFile.write(data, to: url)
        } catch {
            throw ImageCodecError(path: url.path, kind: .writeFailed, detail: "\(error)")
        }
    }
}

// MARK: - Path checks

extension HarmonizeJob {
    /// Checks, before any work: the inputs are files, the output and sheet have a known image
    /// extension, lie in existing folders, are not folders, and are none of the input files.
    public static func checkPaths(_ request: HarmonizeRequest) throws {
        let inputs = [request.composite, request.mask] + (request.target.map { [$0] } ?? [])
        try checkWritable(request.output, label: "output", inputs: inputs)
        if let comparison = request.comparison {
            try checkWritable(comparison, label: "comparison sheet", inputs: inputs)
            if sameFile(comparison, request.output) {
                throw HarmonizeError("\(comparison.path): the comparison sheet would overwrite the output")
            }
        }
    }

    /// Checks that `url` can receive an image without touching an input.
    public static func checkWritable(_ url: URL, label: String, inputs: [URL]) throws {
        guard ImageFormat(pathExtension: url.pathExtension) != nil else {
            throw HarmonizeError(
                "\(url.path): \(label) needs the extension .png (or .jpg / .jpeg), has \"\(url.pathExtension)\"")
        }
        let folder = url.deletingLastPathComponent()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw HarmonizeError("\(url.path): \(label) folder \(folder.path) does not exist")
        }
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw HarmonizeError("\(url.path): \(label) is a folder")
        }
        for input in inputs where sameFile(url, input) {
            throw HarmonizeError("\(url.path): \(label) would overwrite the input \(input.path); choose another name")
        }
    }

    /// Whether two paths name the same file: equal after resolving links, or the same inode.
    static func sameFile(_ a: URL, _ b: URL) -> Bool {
        let pa = a.standardizedFileURL.resolvingSymlinksInPath().path,
            pb = b.standardizedFileURL.resolvingSymlinksInPath().path
        if pa == pb { return true }
        var sa = stat(), sb = stat()
        guard stat(pa, &sa) == 0, stat(pb, &sb) == 0 else { return false }
        return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev
    }
}

/// Wall-clock and process CPU time per stage of a job.
public struct StageClock: Sendable {
    private var last = Date()
    private var lastCPU = StageClock.processCPUSeconds()
    public private(set) var laps: [(stage: String, seconds: Double)] = []
    /// CPU seconds of all threads per stage (same order as `laps`).
    public private(set) var cpuSeconds: [Double] = []
    public init() {}

    /// Records the time since the previous lap under `stage`.
    public mutating func lap(_ stage: String) {
        let now = Date(), cpu = Self.processCPUSeconds()
        laps.append((stage, now.timeIntervalSince(last)))
        cpuSeconds.append(cpu - lastCPU)
        last = now
        lastCPU = cpu
    }

    static func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
