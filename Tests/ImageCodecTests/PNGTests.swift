import Foundation
import GKNetImageCodec
import GKNetTestSupport
import Testing

@Suite struct PNGTests {
    @Test(arguments: PixelLayout.allCases)
    func eightBitRoundTripIsBitExact(layout: PixelLayout) throws {
        let image = randomRaster(width: 37, height: 19, layout: layout, seed: UInt64(layout.rawValue), as: UInt8.self)
        let data = try PNGCodec.encode(image)
        let decoded = try PNGCodec.decode(data, path: "roundtrip.png")
        #expect(decoded == .eightBit(image))
    }

    @Test(arguments: PixelLayout.allCases)
    func sixteenBitRoundTripIsBitExact(layout: PixelLayout) throws {
        let image = randomRaster(
            width: 23, height: 17, layout: layout, seed: 100 + UInt64(layout.rawValue), as: UInt16.self)
        let data = try PNGCodec.encode(image, compressionLevel: 1)
        let decoded = try PNGCodec.decode(data, path: "roundtrip16.png")
        #expect(decoded == .sixteenBit(image))
    }

    @Test func fileRoundTripThroughImageFile() throws {
        let folder = try ImageFixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = randomRaster(width: 5, height: 3, layout: .rgba, seed: 9, as: UInt16.self)
        let url = folder.appendingPathComponent("x.png")
        try ImageFile.write(image, to: url)
        #expect(try ImageFile.read(url) == .sixteenBit(image))
        // atomic write: only the final file is left behind, and overwriting works
        try ImageFile.write(image, to: url)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["x.png"])
    }

    /// Files written by Pillow (palette, palette + tRNS, 1-bit, 16-bit gray, gray + alpha, RGBA)
    /// decode to exactly Pillow's samples.
    @Test(arguments: [
        ("palette.png", PixelLayout.rgb, 8), ("palette_trns.png", .rgba, 8), ("gray1.png", .gray, 8),
        ("gray16.png", .gray, 16), ("gray_alpha.png", .grayAlpha, 8), ("rgba.png", .rgba, 8),
    ])
    func decodesPillowFilesExactly(name: String, layout: PixelLayout, bitDepth: Int) throws {
        let decoded = try ImageFile.read(ImageFixtures.url(name))
        let expected = try ImageFixtures.pillow(name)
        #expect(decoded.layout == layout)
        #expect(decoded.bitDepth == bitDepth)
        #expect([decoded.height, decoded.width, decoded.layout.channels] == expected.shape)
        let c = compare(sampleValues(decoded), expected.data, relativeTolerance: 0, absoluteTolerance: 0, label: name)
        #expect(c.passed, "\(c)")
    }
}
