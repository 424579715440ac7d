// A PNG plot of a training run: the training loss (log scale, per step and smoothed) on top,
// validation fMSE (red, left scale) and PSNR (green, right scale) below, against the step.
// Drawn with a few lines of rasterisation and a 3x5 pixel font for the axis numbers.
import Foundation
import GKNetImageCodec

enum TrainingPlot {
    static let width = 900
    static let panelHeight = 280
    static let margin = (left: 70, right: 70, top: 20, bottom: 30)

    /// The plot as an RGB image.
    static func render(_ history: TrainingHistory) -> PlanarImage {
        var canvas = Canvas(width: width, height: 2 * panelHeight)
        let lastStep = max(history.entries.last?.step ?? 1, history.validations.last?.step ?? 1, 1)
        // Panel 1: training loss, log10.
        let losses = history.entries.compactMap { entry in entry.loss.map { (step: entry.step, loss: $0) } }
            .filter { $0.loss > 0 && $0.loss.isFinite }
        if !losses.isEmpty {
            let logs = losses.map { log10(Double($0.loss)) }
            let (low, high) = paddedRange(logs)
            let frame = Frame(
                x0: margin.left, y0: margin.top, x1: width - margin.right, y1: panelHeight - margin.bottom,
                xRange: 0...Double(lastStep), yRange: low...high)
            canvas.drawFrame(frame, gray: 0.6)
            canvas.polyline(zip(losses, logs).map { (Double($0.0.step), $0.1) }, in: frame, color: (0.75, 0.8, 0.95))
            var smoothed: [(Double, Double)] = []
            var running: Double?
            for (entry, value) in zip(losses, logs) {
                running = running.map { 0.9 * $0 + 0.1 * value } ?? value
                smoothed.append((Double(entry.step), running!))
            }
            canvas.polyline(smoothed, in: frame, color: (0.1, 0.2, 0.8))
            canvas.text(String(format: "%.1e", pow(10, high)), x: 4, y: frame.y0, color: (0.1, 0.2, 0.8))
            canvas.text(String(format: "%.1e", pow(10, low)), x: 4, y: frame.y1 - 5, color: (0.1, 0.2, 0.8))
            canvas.text("\(lastStep)", x: frame.x1 - 20, y: frame.y1 + 8, color: (0, 0, 0))
        }
        // Panel 2: validation fMSE and PSNR.
        let validations = history.validations.compactMap { record in
            record.validation.map { (step: record.step, metrics: $0) }
        }
        if !validations.isEmpty {
            let top = panelHeight
            let fmse = validations.map(\.metrics.fmse), psnr = validations.map(\.metrics.psnr)
            let fmseRange = paddedRange(fmse), psnrRange = paddedRange(psnr)
            let frame = Frame(
                x0: margin.left, y0: top + margin.top, x1: width - margin.right, y1: top + panelHeight - margin.bottom,
                xRange: 0...Double(lastStep), yRange: fmseRange.0...fmseRange.1)
            canvas.drawFrame(frame, gray: 0.6)
            canvas.polyline(
                validations.map { (Double($0.step), $0.metrics.fmse) }, in: frame, color: (0.85, 0.1, 0.1),
                markers: true)
            var psnrFrame = frame
            psnrFrame.yRange = psnrRange.0...psnrRange.1
            canvas.polyline(
                validations.map { (Double($0.step), $0.metrics.psnr) }, in: psnrFrame, color: (0.1, 0.6, 0.1),
                markers: true)
            canvas.text(String(format: "%.1f", fmseRange.1), x: 4, y: frame.y0, color: (0.85, 0.1, 0.1))
            canvas.text(String(format: "%.1f", fmseRange.0), x: 4, y: frame.y1 - 5, color: (0.85, 0.1, 0.1))
            canvas.text(String(format: "%.2f", psnrRange.1), x: frame.x1 + 6, y: frame.y0, color: (0.1, 0.6, 0.1))
            canvas.text(String(format: "%.2f", psnrRange.0), x: frame.x1 + 6, y: frame.y1 - 5, color: (0.1, 0.6, 0.1))
            canvas.text("\(lastStep)", x: frame.x1 - 20, y: frame.y1 + 8, color: (0, 0, 0))
        }
        return canvas.image
    }

    static func paddedRange(_ values: [Double]) -> (Double, Double) {
        let low = values.min() ?? 0, high = values.max() ?? 1
        let pad = max((high - low) * 0.05, 1e-6)
        return (low - pad, high + pad)
    }

    struct Frame {
        var x0: Int, y0: Int, x1: Int, y1: Int
        var xRange: ClosedRange<Double>, yRange: ClosedRange<Double>
        func point(_ x: Double, _ y: Double) -> (Int, Int) {
            let fx = (x - xRange.lowerBound) / max(xRange.upperBound - xRange.lowerBound, 1e-12)
            let fy = (y - yRange.lowerBound) / max(yRange.upperBound - yRange.lowerBound, 1e-12)
            return (x0 + Int((fx * Double(x1 - x0)).rounded()), y1 - Int((fy * Double(y1 - y0)).rounded()))
        }
    }

    struct Canvas {
        var image: PlanarImage
        init(width: Int, height: Int) { image = PlanarImage(width: width, height: height, channels: 3, repeating: 1) }

        mutating func set(_ x: Int, _ y: Int, _ color: (Float, Float, Float)) {
            guard x >= 0, y >= 0, x < image.width, y < image.height else { return }
            let n = image.planeSize, i = y * image.width + x
            image.values[i] = color.0
            image.values[n + i] = color.1
            image.values[2 * n + i] = color.2
        }

        mutating func line(_ a: (Int, Int), _ b: (Int, Int), _ color: (Float, Float, Float)) {
            var (x, y) = a
            let dx = abs(b.0 - x), dy = -abs(b.1 - y), sx = x < b.0 ? 1 : -1, sy = y < b.1 ? 1 : -1
            var error = dx + dy
            while true {
                set(x, y, color)
                if x == b.0 && y == b.1 { break }
                let e2 = 2 * error
                if e2 >= dy {
                    error += dy
                    x += sx
                }
                if e2 <= dx {
                    error += dx
                    y += sy
                }
            }
        }

        mutating func drawFrame(_ frame: Frame, gray: Float) {
            let c = (gray, gray, gray)
            line((frame.x0, frame.y0), (frame.x1, frame.y0), c)
            line((frame.x0, frame.y1), (frame.x1, frame.y1), c)
            line((frame.x0, frame.y0), (frame.x0, frame.y1), c)
            line((frame.x1, frame.y0), (frame.x1, frame.y1), c)
        }

        mutating func polyline(
            _ points: [(Double, Double)], in frame: Frame, color: (Float, Float, Float), markers: Bool = false
        ) {
            let mapped = points.map { frame.point($0.0, $0.1) }
            for (a, b) in zip(mapped, mapped.dropFirst()) { line(a, b, color) }
            if markers || mapped.count == 1 {
                for p in mapped { for dy in -2...2 { for dx in -2...2 { set(p.0 + dx, p.1 + dy, color) } } }
            }
        }

        /// 3x5 glyphs for digits and ".-e+" (rows top to bottom, 3 bits each).
        static let glyphs: [Character: [UInt8]] = [
            "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7],
            "4": [5, 5, 7, 1, 1],
            "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7],
            "9": [7, 5, 7, 1, 7],
            ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0], "+": [0, 2, 7, 2, 0], "e": [0, 7, 7, 4, 7],
        ]

        /// Draws `text` at 2x scale with its top-left corner at (x, y).
        mutating func text(_ text: String, x: Int, y: Int, color: (Float, Float, Float)) {
            var cursor = x
            for character in text {
                if let rows = Self.glyphs[character] {
                    for (row, bits) in rows.enumerated() {
                        for column in 0..<3 where bits & (4 >> UInt8(column)) != 0 {
                            for sy in 0..<2 {
                                for sx in 0..<2 { set(cursor + 2 * column + sx, y + 2 * row + sy, color) }
                            }
                        }
                    }
                }
                cursor += 8
            }
        }
    }
}
