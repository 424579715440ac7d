// A side-by-side picture for people who would rather look than read: the composite, the composite
// with the mask's outline drawn over it (background dimmed), the result, and the target when it
// is known, each panel labelled (a built-in 5x7 pixel font, no font files).
import GKNetImageCodec

public enum ComparisonSheet {
    /// Gap between panels and around the sheet, in pixels.
    static let margin = 8
    /// Label glyphs are drawn at this many pixels per font pixel.
    static let labelScale = 2
    static let background: [Float] = [0.13, 0.13, 0.13]
    static let outlineColour: [Float] = [1.0, 0.15, 0.75]
    static let labelColour: [Float] = [0.92, 0.92, 0.92]

    /// The sheet: panels of the same size (longest side `panelSide` at most, never enlarged),
    /// left to right composite, mask outline, result, target (if given), with labels above.
    /// - Parameters: composite, result, target 3 x H x W; mask 1 x H x W (all 0...1).
    /// - Returns: a 3-channel image.
    public static func make(
        composite: PlanarImage, mask: PlanarImage, result: PlanarImage, target: PlanarImage?, panelSide: Int = 512
    ) -> PlanarImage {
        let scale = min(1, Double(panelSide) / Double(max(composite.width, composite.height)))
        let width = max(1, Int((Double(composite.width) * scale).rounded()))
        let height = max(1, Int((Double(composite.height) * scale).rounded()))
        func fit(_ image: PlanarImage) -> PlanarImage {
            image.width == width && image.height == height
                ? image : image.resized(width: width, height: height, filter: .area)
        }
        let smallComposite = fit(composite)
        let smallMask = fit(mask)
        var panels: [(label: String, image: PlanarImage)] = [
            ("COMPOSITE", smallComposite),
            ("MASK", outlined(smallComposite, mask: smallMask)),
            ("RESULT", fit(result)),
        ]
        if let target { panels.append(("TARGET", fit(target))) }

        let labelHeight = Glyphs.height * labelScale + margin
        let sheetWidth = margin + panels.count * (width + margin)
        let sheetHeight = margin + labelHeight + height + margin
        var sheet = PlanarImage(width: sheetWidth, height: sheetHeight, channels: 3)
        for c in 0..<3 {
            for i in 0..<sheet.planeSize { sheet.values[c * sheet.planeSize + i] = background[c] }
        }
        for (index, panel) in panels.enumerated() {
            let left = margin + index * (width + margin)
            draw(label: panel.label, into: &sheet, x: left, y: margin, maximumWidth: width)
            paste(panel.image, into: &sheet, x: left, y: margin + labelHeight)
        }
        return sheet
    }

    /// The composite with its background dimmed and the mask boundary (mask crossing 0.5, two
    /// pixels wide) drawn in `outlineColour`.
    static func outlined(_ composite: PlanarImage, mask: PlanarImage) -> PlanarImage {
        let (w, h) = (composite.width, composite.height)
        let plane = w * h
        var image = composite
        for i in 0..<plane {
            let keep = 0.45 + 0.55 * min(max(mask.values[i], 0), 1)
            for c in 0..<3 { image.values[c * plane + i] *= keep }
        }
        let inside = mask.values.map { $0 >= 0.5 }
        for y in 0..<h {
            for x in 0..<w {
                let here = inside[y * w + x]
                var edge = false
                // within 1 pixel of a pixel on the other side of the boundary
                for dy in -1...1 where !edge {
                    for dx in -1...1 {
                        let (ny, nx) = (y + dy, x + dx)
                        if ny >= 0, ny < h, nx >= 0, nx < w, inside[ny * w + nx] != here {
                            edge = true
                            break
                        }
                    }
                }
                if edge {
                    for c in 0..<3 { image.values[c * plane + y * w + x] = outlineColour[c] }
                }
            }
        }
        return image
    }

    static func paste(_ panel: PlanarImage, into sheet: inout PlanarImage, x: Int, y: Int) {
        for c in 0..<3 {
            for row in 0..<panel.height {
                let source = (c * panel.height + row) * panel.width
                let destination = (c * sheet.height + y + row) * sheet.width + x
                for column in 0..<panel.width { sheet.values[destination + column] = panel.values[source + column] }
            }
        }
    }

    /// Draws `label` (letters of `Glyphs`) with its top-left corner at (x, y), cut at `maximumWidth`.
    static func draw(label: String, into sheet: inout PlanarImage, x: Int, y: Int, maximumWidth: Int) {
        var penX = x
        for character in label {
            let advance = (Glyphs.width + 1) * labelScale
            guard penX + Glyphs.width * labelScale <= x + maximumWidth else { break }
            if let rows = Glyphs.table[character] {
                for (row, bits) in rows.enumerated() {
                    for column in 0..<Glyphs.width where bits & (1 << (Glyphs.width - 1 - column)) != 0 {
                        for dy in 0..<labelScale {
                            for dx in 0..<labelScale {
                                let py = y + row * labelScale + dy, px = penX + column * labelScale + dx
                                guard py < sheet.height, px < sheet.width else { continue }
                                for c in 0..<3 {
                                    sheet.values[(c * sheet.height + py) * sheet.width + px] = labelColour[c]
                                }
                            }
                        }
                    }
                }
            }
            penX += advance
        }
    }
}

/// A 5x7 pixel font with the letters the labels use; each row is 5 bits, most significant = left.
enum Glyphs {
    static let width = 5
    static let height = 7
    static let table: [Character: [UInt8]] = [
        "A": [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        "C": [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        "E": [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        "G": [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        "I": [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        "K": [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        "L": [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        "M": [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        "O": [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        "P": [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        "R": [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        "S": [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        "T": [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        "U": [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
    ]
}
