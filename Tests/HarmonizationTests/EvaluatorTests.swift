import Foundation
import GKNetImageCodec
import GKNetTestSupport
import Testing

// Evaluation against an independent numpy implementation (Scripts/fixtures/evaluation.py), the
// baselines, and the report formats.
@testable import GKNetDatasets
@testable import GKNetEvaluation

private struct Expected: Decodable {
    struct Summary: Decodable {
        var count: Int
        var mse: Double
        var fmse: Double
        var psnr: Double
    }
    struct Row: Decodable {
        var subset: String
        var name: String
        var mse: Double
        var fmse: Double
        var psnr: Double
        var foregroundRatio: Double
        enum CodingKeys: String, CodingKey {
            case subset, name, mse, fmse, psnr
            case foregroundRatio = "foreground_ratio"
        }
    }
    var all: Summary
    var subsets: [String: Summary]
    var bands: [String: Summary]
    var perImage: [Row]
    enum CodingKeys: String, CodingKey {
        case all, subsets, bands
        case perImage = "per_image"
    }
}

private func relativeClose(_ a: Double, _ b: Double, _ tolerance: Double = 1e-6) -> Bool {
    abs(a - b) <= tolerance * max(abs(b), 1e-12)
}

@Suite struct EvaluatorTests {
    let root = Fixtures.url("evaluation")

    @Test(arguments: [("target-max", EvaluationResolution.fixed(256)), ("255", EvaluationResolution.full)])
    func matchesTheIndependentNumpyImplementation(peak: String, resolution: EvaluationResolution) throws {
        let expectedAll = try JSONDecoder().decode(
            [String: Expected].self, from: Data(contentsOf: root.appendingPathComponent("expected.json")))
        let expected = try #require(expectedAll[peak])
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("dataset"), split: .test)
        var options = EvaluationOptions()
        options.peak = PSNRPeak(rawValue: peak)!
        options.resolution = resolution
        let report = try evaluate(
            dataset: dataset, source: .directory(root.appendingPathComponent("predictions")), options: options)
        func check(_ actual: MetricsSummary, _ reference: Expected.Summary, _ label: String) {
            #expect(actual.count == reference.count, "\(label) count")
            #expect(relativeClose(actual.mse, reference.mse), "\(label) MSE \(actual.mse) vs \(reference.mse)")
            #expect(relativeClose(actual.fmse, reference.fmse), "\(label) fMSE \(actual.fmse) vs \(reference.fmse)")
            #expect(relativeClose(actual.psnr, reference.psnr), "\(label) PSNR \(actual.psnr) vs \(reference.psnr)")
        }
        check(report.all, expected.all, "All")
        for (subset, summary) in expected.subsets { check(try #require(report.subsets[subset]), summary, subset) }
        for (band, summary) in expected.bands { check(try #require(report.bands[band]), summary, band) }
        #expect(report.perImage.count == expected.perImage.count)
        for (actual, reference) in zip(report.perImage, expected.perImage) {
            #expect(actual.name == reference.name)
            #expect(relativeClose(actual.metrics.fmse, reference.fmse), "\(reference.name) fMSE")
            #expect(actual.metrics.foregroundRatio == reference.foregroundRatio, "\(reference.name) ratio")
        }
    }

    @Test func identityBaselineScoresTheCompositeAndReinhardChangesOnlyTheForeground() throws {
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("dataset"), split: .test)
        let identity = try evaluate(dataset: dataset, source: .baseline(.identity))
        #expect(identity.all.count == 5 && identity.all.fmse > 0)
        let sample = try dataset.load(0)
        let reinhard = ClassicBaseline.reinhard.apply(composite: sample.composite, mask: sample.mask)
        var changed = 0
        for c in 0..<3 {
            for p in 0..<sample.composite.planeSize {
                let i = c * sample.composite.planeSize + p
                if sample.mask.values[p] == 0 {
                    #expect(reinhard.values[i] == sample.composite.values[i])
                } else if reinhard.values[i] != sample.composite.values[i] {
                    changed += 1
                }
            }
        }
        #expect(changed > 0)
    }

    /// Sharded evaluation (each rank of a data-parallel run validates a share): the shards' totals
    /// add up to the whole list's summary, and each image is scored in exactly one shard.
    @Test func shardTotalsAddUpToTheWholeList() throws {
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("dataset"), split: .test)
        let whole = try evaluate(dataset: dataset, source: .baseline(.reinhard))
        var totals = [Double](repeating: 0, count: 4)
        var names: [String] = []
        for index in 0..<3 {
            var options = EvaluationOptions()
            options.shard = try DatasetShard(index: index, count: 3)
            let part = try evaluate(dataset: dataset, source: .baseline(.reinhard), options: options)
            #expect(part.all.count == (index < 2 ? 2 : 1), "shard \(index)/3 of 5 images")
            totals = zip(totals, part.all.totals).map(+)
            names += part.perImage.map(\.name)
        }
        #expect(names.sorted() == whole.perImage.map(\.name).sorted())
        let summed = MetricsSummary(totals: totals)
        #expect(summed.count == whole.all.count)
        for (a, b) in [(summed.mse, whole.all.mse), (summed.fmse, whole.all.fmse), (summed.psnr, whole.all.psnr)] {
            #expect(relativeClose(a, b, 1e-12), "\(a) vs \(b)")
        }
    }

    @Test func missingPredictionNamesTheFile() throws {
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("dataset"), split: .test)
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        do {
            _ = try evaluate(dataset: dataset, source: .directory(empty))
            Issue.record("missing predictions were accepted")
        } catch let error as DatasetError {
            #expect(error.description.contains(empty.path) && error.description.contains("a1_1_1"))
        }
    }

    @Test func reportsRenderAsTableCSVAndJSON() throws {
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("dataset"), split: .test)
        let report = try evaluate(dataset: dataset, source: .baseline(.identity))
        let table = report.table()
        #expect(
            table.contains("HAlpha") && table.contains("HBeta") && table.contains("All") && table.contains("fg 0-5%"))
        // The All row shows the summary's numbers.
        let allRow = try #require(table.split(separator: "\n").first { $0.hasPrefix("All ") })
        #expect(
            allRow.contains(String(format: "%10.2f %10.2f %8.2f", report.all.mse, report.all.fmse, report.all.psnr)),
            "\(allRow)")
        // A subset name longer than the first column widens it instead of being cut.
        var renamed = report
        renamed.subsets["HGComprisTune30-larger-draw"] = renamed.subsets.removeValue(forKey: "HAlpha")
        let wide = renamed.table().split(separator: "\n").map(String.init)
        #expect(wide.contains { $0.hasPrefix("HGComprisTune30-larger-draw ") }, "\(wide)")
        #expect(Set(wide.prefix(4).map(\.count)).count == 1, "header and subset rows differ in width: \(wide)")
        // CSV: a header, then one row per image with its metrics (Swift's shortest round-trip text).
        let rows = report.csv().split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        #expect(rows.count == 6 && rows[0].count == 12 && rows[0][4] == "mse" && rows[0][9] == "composite_fmse")
        for (row, image) in zip(rows.dropFirst(), report.perImage) {
            #expect(row.count == 12 && row[0] == image.subset && row[1] == image.name, "\(row)")
            #expect(Double(row[9]) == image.compositeMetrics.fmse && row[11] == image.difficulty.rawValue, "\(row)")
            #expect(
                Double(row[4]) == image.metrics.mse && Double(row[5]) == image.metrics.fmse
                    && Double(row[6]) == image.metrics.psnr, "\(row)")
            #expect(
                Int(row[2]) == image.width && Int(row[3]) == image.height
                    && Double(row[7]) == image.metrics.foregroundRatio)
        }
        // JSON: decodes back to the same report, and names its fields as documented.
        let json = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: json)
        #expect(decoded.all == report.all && decoded.subsets == report.subsets && decoded.bands == report.bands)
        #expect(
            decoded.perImage.map(\.name) == report.perImage.map(\.name)
                && decoded.perImage.map(\.metrics) == report.perImage.map(\.metrics))
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(
            Set(object.keys) == [
                "source", "resolution", "peak", "all", "subsets", "bands", "subsetBands", "impact",
                "impactByDifficulty", "millisecondsPerImage", "perImage",
            ])
        #expect((object["perImage"] as? [Any])?.count == 5 && object["peak"] as? String == "target-max")
        // the means are in the JSON, not only the sums
        let all = try #require(object["all"] as? [String: Any])
        #expect(all["fmse"] as? Double == report.all.fmse && all["psnr"] as? Double == report.all.psnr)
        #expect(decoded.impact == report.impact && decoded.impactByDifficulty == report.impactByDifficulty)
    }

    /// Hand-checkable: four images with known fMSE for the result and the composite.
    @Test func impactSummaryCountsWorseImagesAndTheMedianChange() throws {
        func metrics(_ fmse: Double, _ psnr: Double = 30) -> ImageMetrics {
            ImageMetrics(mse: fmse / 10, fmse: fmse, psnr: psnr, foregroundRatio: 0.1)
        }
        let results = [metrics(100, 31), metrics(50, 32), metrics(300, 30), metrics(0, 40)]
        let composites = [metrics(80, 30), metrics(100, 30), metrics(300, 30), metrics(10, 30)]
        let summary = try #require(ImpactSummary(results: results, composites: composites))
        #expect(summary.count == 4)
        #expect(summary.fmse == 112.5 && summary.compositeFMSE == 122.5)
        #expect(summary.fmseRatio == 112.5 / 122.5)
        #expect(summary.psnrGain == 3.25)
        // only 100 > 80 is worse; 300 == 300 is not
        #expect(summary.worse == 1 && summary.worseShare == 0.25)
        // changes +20, -50, 0, -10: median of the middle two (-10, 0)
        #expect(summary.medianFMSEChange == -5)
        #expect(ImpactSummary(results: [], composites: []) == nil)
        // untouched composites (fMSE 0): no ratio
        let untouched = try #require(ImpactSummary(results: [metrics(4)], composites: [metrics(0)]))
        #expect(untouched.fmseRatio == nil && untouched.worse == 1 && untouched.medianFMSEChange == 4)
        #expect(untouched.line.hasPrefix("fMSE 4.00 (every composite equals its real image), PSNR +0.00 dB, 1 of 1"))
        #expect(summary.line.hasPrefix("fMSE 0.918x the composite's, PSNR +3.25 dB, 1 of 4 images worse (25.0 %)"))
    }

    @Test(arguments: [
        (0.0, "<300"), (299.99, "<300"), (300, "300-1000"), (999.9, "300-1000"), (1000, "1000-3000"),
        (3000, ">=3000"),
    ])
    func difficultyBandBoundaries(fmse: Double, band: String) {
        #expect(CompositeDifficultyBand(compositeFMSE: fmse).rawValue == band)
    }

    /// Three composites of one flat grey photo (mask = the whole image, full resolution, PNG) with
    /// results whose fMSE is known exactly: +10 levels everywhere gives fMSE 100, and so on.
    @Test func evaluationReportsImagesMadeWorsePerDifficultyBand() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-impact-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let predictions = root.appendingPathComponent("predictions")
        for folder in ["composite_images", "masks", "real_images"] {
            try FileManager.default.createDirectory(
                at: root.appendingPathComponent("Flat/\(folder)"), withIntermediateDirectories: true)
        }
        try FileManager.default.createDirectory(at: predictions, withIntermediateDirectories: true)
        func flat(_ level: Float, channels: Int = 3) -> PlanarImage {
            PlanarImage(
                width: 8, height: 8, channels: channels, values: [Float](repeating: level / 255, count: channels * 64))
        }
        try ImageFile.write(flat(100), to: root.appendingPathComponent("Flat/real_images/p.png"), format: .png)
        try ImageFile.write(flat(255, channels: 1), to: root.appendingPathComponent("Flat/masks/p_1.png"), format: .png)
        // (composite offset, result offset) in levels: fMSE = offset^2
        let cases: [(composite: Float, result: Float)] = [(10, 20), (20, 10), (60, 30)]
        for (k, offsets) in cases.enumerated() {
            try ImageFile.write(
                flat(100 + offsets.composite),
                to: root.appendingPathComponent("Flat/composite_images/p_1_\(k + 1).png"),
                format: .png)
            try ImageFile.write(
                flat(100 + offsets.result), to: predictions.appendingPathComponent("p_1_\(k + 1).png"), format: .png)
        }
        try Data("p_1_1.png\np_1_2.png\np_1_3.png\n".utf8).write(to: root.appendingPathComponent("Flat/Flat_test.txt"))
        let dataset = try HarmonizationDataset(root: root.appendingPathComponent("Flat"), split: .test)
        var options = EvaluationOptions()
        options.resolution = .full
        let report = try evaluate(dataset: dataset, source: .directory(predictions), options: options)
        let impact = try #require(report.impact)
        #expect(impact.count == 3 && impact.worse == 1)
        #expect(
            relativeClose(impact.fmse, (400 + 100 + 900) / 3)
                && relativeClose(impact.compositeFMSE, (100 + 400 + 3600) / 3))
        #expect(relativeClose(impact.medianFMSEChange, -300))
        let easy = try #require(report.impactByDifficulty["<300"])
        let easyRatio = try #require(easy.fmseRatio)
        #expect(easy.count == 1 && easy.worse == 1 && relativeClose(easyRatio, 4))
        let middle = try #require(report.impactByDifficulty["300-1000"])
        let middleRatio = try #require(middle.fmseRatio)
        #expect(middle.count == 1 && middle.worse == 0 && relativeClose(middleRatio, 0.25))
        let hard = try #require(report.impactByDifficulty[">=3000"])
        let hardRatio = try #require(hard.fmseRatio)
        #expect(hard.count == 1 && hard.worse == 0 && relativeClose(hardRatio, 0.25))
        #expect(report.impactByDifficulty["1000-3000"] == nil)
        // the identity baseline makes nothing worse and changes nothing
        let identity = try #require(
            try evaluate(dataset: dataset, source: .baseline(.identity), options: options).impact)
        #expect(identity.worse == 0 && identity.medianFMSEChange == 0 && identity.fmseRatio == 1)
        #expect(report.impactTable().contains(">=3000") && report.impactLine.contains("1 of 3 images worse (33.3 %)"))
    }
}
