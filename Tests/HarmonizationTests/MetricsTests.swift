import Foundation
import Testing

@testable import GKNetEvaluation

@Suite struct MetricsTests {
    /// 2x2 image, one foreground pixel with full weight.
    @Test func handComputedBinaryMask() {
        // target: all channels 100 except pixel 0 = 200 in every channel
        var target = [Float](repeating: 100, count: 12)
        for c in 0..<3 { target[c * 4] = 200 }
        var prediction = target
        for c in 0..<3 { prediction[c * 4] = 190 }  // error 10 on pixel 0, all channels
        let mask: [Float] = [1, 0, 0, 0]
        let m = imageMetrics(prediction: prediction, target: target, mask: mask, height: 2, width: 2)
        // MSE = 3 * 100 / 12 = 25; fMSE = 300 / (3 * 1 + 1e-6); PSNR peak = 200
        #expect(m.mse == 25)
        #expect(abs(m.fmse - 300 / (3 + 1e-6)) < 1e-12)
        #expect(abs(m.psnr - 10 * log10(200.0 * 200 / (25 + 1e-6))) < 1e-12)
        #expect(m.foregroundRatio == 0.25)
    }

    @Test func softMaskWeightsTheForegroundError() {
        let target = [Float](repeating: 50, count: 3 * 2)
        var prediction = target
        for c in 0..<3 { prediction[c * 2 + 1] = 60 }  // error 10 on pixel 1
        let mask: [Float] = [1, 0.5]
        let m = imageMetrics(prediction: prediction, target: target, mask: mask, height: 1, width: 2)
        // weighted squared error = 0.5 * 100 * 3 = 150; denominator 3 * 1.5
        #expect(abs(m.fmse - 150 / (4.5 + 1e-6)) < 1e-12)
        // pixel 1 has mask exactly 0.5: not counted as foreground (> 0.5 rule)
        #expect(m.foregroundRatio == 0.5)
    }

    @Test func emptyMaskGivesZeroFMSEFromTheEpsilon() {
        let target = [Float](repeating: 10, count: 3)
        let prediction = [Float](repeating: 20, count: 3)
        let m = imageMetrics(prediction: prediction, target: target, mask: [0], height: 1, width: 1)
        #expect(m.fmse == 0)
        #expect(m.mse == 100)
    }

    @Test func psnrPeakChoice() {
        let target: [Float] = [100, 100, 100]
        let prediction: [Float] = [90, 90, 90]
        let byTarget = imageMetrics(
            prediction: prediction, target: target, mask: [1], height: 1, width: 1, peak: .targetMax)
        let fixed = imageMetrics(
            prediction: prediction, target: target, mask: [1], height: 1, width: 1, peak: .fixed255)
        #expect(abs(byTarget.psnr - 10 * log10(10000 / (100 + 1e-6))) < 1e-12)
        #expect(abs(fixed.psnr - 10 * log10(65025 / (100 + 1e-6))) < 1e-12)
    }

    @Test func predictionIsClampedNotQuantised() {
        let target: [Float] = [255, 0, 10.25]
        let prediction: [Float] = [300, -20, 10.75]
        let m = imageMetrics(prediction: prediction, target: target, mask: [1], height: 1, width: 1)
        #expect(abs(m.mse - 0.25 / 3) < 1e-12)
    }

    @Test func bandBoundaries() {
        #expect(ForegroundBand(ratio: 0) == .upTo5)
        #expect(ForegroundBand(ratio: 0.0499) == .upTo5)
        #expect(ForegroundBand(ratio: 0.05) == .from5To15)
        #expect(ForegroundBand(ratio: 0.1499) == .from5To15)
        #expect(ForegroundBand(ratio: 0.15) == .from15)
        #expect(ForegroundBand(ratio: 1) == .from15)
    }

    @Test func allAveragesOverImagesNotSubsets() {
        var accumulator = MetricsAccumulator()
        func metrics(_ mse: Double) -> ImageMetrics {
            ImageMetrics(mse: mse, fmse: mse * 10, psnr: 40 - mse, foregroundRatio: 0.1)
        }
        accumulator.add(metrics(10), subset: "A")
        accumulator.add(metrics(20), subset: "B")
        accumulator.add(metrics(30), subset: "B")
        accumulator.add(metrics(40), subset: "B")
        #expect(accumulator.bySubset["A"]?.mse == 10)
        #expect(accumulator.bySubset["B"]?.mse == 30)
        // mean of the subset means would be 20; the image mean is 25
        #expect(accumulator.all.mse == 25)
        #expect(accumulator.all.count == 4)
        #expect(accumulator.byBand[.from5To15]?.count == 4)
    }
}
