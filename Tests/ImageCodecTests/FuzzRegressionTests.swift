import Foundation
import GKNetImageCodec
import GKNetTestSupport
import Testing

/// The PNG and JPEG fuzz targets' seeds (Fuzz/PNG, Fuzz/JPEG; docs/robustness.md), replayed
/// through the same entry points: valid files decode and convert, damaged ones are thrown
/// `ImageCodecError`s of the expected kind, nothing traps.
@Suite struct ImageFuzzSeedTests {
    static func seeds(_ target: String) throws -> [URL] {
        let folder = Fixtures.repositoryRoot.appendingPathComponent("Fuzz/\(target)")
        var urls: [URL] = []
        for subfolder in ["corpus", "regressions"] {
            let location = folder.appendingPathComponent(subfolder)
            // The corpus is committed; a target may have no regressions yet.
            guard subfolder == "corpus" || FileManager.default.fileExists(atPath: location.path) else { continue }
            urls += try FileManager.default.contentsOfDirectory(at: location, includingPropertiesForKeys: nil)
        }
        try #require(!urls.isEmpty, "no seeds in \(folder.path)/corpus")
        return urls.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// Decodes like the fuzz targets do; returns the error kind, or nil for a decoded image.
    static func replay(_ url: URL, limits: DecodeLimits) throws -> ImageCodecError.Kind? {
        do {
            let image = try ImageFile.decode(try Data(contentsOf: url), path: url.lastPathComponent, limits: limits)
            let rgb = PlanarImage(rgb: image)
            #expect(rgb.channels == 3 && rgb.values.count == 3 * rgb.width * rgb.height)
            for source in [MaskSource.first, .luminance, .alpha] {
                #expect(PlanarImage(mask: image, source: source).values.allSatisfy { $0 >= 0 && $0 <= 1 })
            }
            return nil
        } catch let error as ImageCodecError {
            return error.kind
        }
    }

    @Test func pngSeeds() throws {
        var outcomes: [String: String] = [:]
        for url in try Self.seeds("PNG") {
            outcomes[url.lastPathComponent] =
                try Self.replay(url, limits: DecodeLimits(maximumPixels: 1 << 20)).map { "\($0)" } ?? "ok"
        }
        #expect(outcomes["bad_crc.png"] == "corrupt" && outcomes["truncated.png"] == "truncated")
        #expect(outcomes["zero_width.png"] == "zeroSize" && outcomes["huge.png"] == "tooLarge")
        for name in [
            "gray1.png", "gray8.png", "gray16.png", "gray_alpha8.png", "palette.png", "palette_trns.png", "rgb8.png",
            "rgb8_interlaced.png", "rgb16.png", "rgb16_interlaced.png", "rgba8.png", "one_pixel.png",
        ] {
            #expect(outcomes[name] == "ok", "\(name): \(outcomes[name] ?? "missing")")
        }
    }

    @Test func jpegSeeds() throws {
        var outcomes: [String: String] = [:]
        for url in try Self.seeds("JPEG") {
            outcomes[url.lastPathComponent] =
                try Self.replay(url, limits: DecodeLimits(maximumPixels: 1 << 20)).map { "\($0)" } ?? "ok"
        }
        #expect(outcomes["truncated.jpg"] == "truncated" && outcomes["header_only.jpg"] == "truncated")
        for name in [
            "rgb444.jpg", "rgb420.jpg", "rgb422.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg",
            "exif_orientation3.jpg",
            "exif_orientation6.jpg", "exif_orientation8.jpg", "one_pixel.jpg",
        ] {
            #expect(outcomes[name] == "ok", "\(name): \(outcomes[name] ?? "missing")")
        }
        #expect(outcomes.count == 14, "\(outcomes)")
    }
}
