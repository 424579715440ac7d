import Foundation
import GKNetImageCodec
import GKNetTestSupport
import Testing

@Suite struct JPEGTests {
    /// Baseline (4:2:0 and 4:4:4), progressive, grayscale and CMYK files written by Pillow decode
    /// within 1 level of Pillow's own decode; orientations 2-8 are applied like
    /// `ImageOps.exif_transpose`.
    @Test(arguments: [
        "baseline420.jpg", "baseline444.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg",
        "orientation2.jpg", "orientation3.jpg", "orientation4.jpg", "orientation5.jpg",
        "orientation6.jpg", "orientation7.jpg", "orientation8.jpg",
    ])
    func matchesPillowWithinOneLevel(name: String) throws {
        let decoded = try ImageFile.read(ImageFixtures.url(name))
        let expected = try ImageFixtures.pillow(name)
        #expect([decoded.height, decoded.width, decoded.layout.channels] == expected.shape, "\(name)")
        let c = compare(sampleValues(decoded), expected.data, relativeTolerance: 0, absoluteTolerance: 1, label: name)
        #expect(c.passed, "\(c)")
    }

    @Test func readsExifOrientation() throws {
        for orientation in 2...8 {
            let data = try ImageFixtures.bytes("orientation\(orientation).jpg")
            let parsed = data.withUnsafeBytes { ExifOrientation.inJPEG($0.bindMemory(to: UInt8.self)) }
            #expect(parsed.rawValue == orientation)
        }
        let plain = try ImageFixtures.bytes("baseline420.jpg")
        #expect(plain.withUnsafeBytes { ExifOrientation.inJPEG($0.bindMemory(to: UInt8.self)) } == .up)
    }

    @Test func orientationCanBeLeftUnapplied() throws {
        let data = try ImageFixtures.bytes("orientation6.jpg")
        let stored = try JPEGCodec.decode(data, path: "o6.jpg", applyOrientation: false)
        let upright = try JPEGCodec.decode(data, path: "o6.jpg")
        #expect(stored.width == 13 && stored.height == 9)
        #expect(upright.width == 9 && upright.height == 13)
    }

    @Test func encodeRoundTripIsClose() throws {
        let photo = try ImageFile.read(ImageFixtures.url("rgba.png"))
        guard case .eightBit(let rgba) = photo else {
            Issue.record("expected 8-bit")
            return
        }
        let rgb = PlanarImage(rgb: rgba).raster8()
        for progressive in [false, true] {
            let data = try JPEGCodec.encode(rgb, quality: 95, subsampling: .none, progressive: progressive)
            // SOF2 (progressive) or SOF0 (baseline) marker
            let marker: [UInt8] = progressive ? [0xFF, 0xC2] : [0xFF, 0xC0]
            #expect(data.firstRange(of: Data(marker)) != nil)
            let decoded = try JPEGCodec.decode(data, path: "q95.jpg")
            guard case .eightBit(let back) = decoded else {
                Issue.record("expected 8-bit")
                return
            }
            let meanError =
                zip(back.samples, rgb.samples).map { abs(Float($0) - Float($1)) }.reduce(0, +)
                / Float(rgb.samples.count)
            #expect(back.layout == .rgb && meanError < 4, "mean error \(meanError)")
        }
        let gray = RasterImage8(width: 9, height: 7, layout: .gray, samples: (0..<63).map { UInt8($0 * 4) })
        let decodedGray = try JPEGCodec.decode(try JPEGCodec.encode(gray, quality: 100), path: "gray.jpg")
        #expect(decodedGray.layout == .gray)
    }
}
