// One test per bad input: each must throw an ImageCodecError of the right kind that names the
// file, and none may crash the process.
import Foundation
import GKNetImageCodec
import Testing

@Suite struct BadInputTests {
    func expectError(_ kind: ImageCodecError.Kind, path: String = "bad.img", _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected \(kind), no error thrown")
        } catch let error as ImageCodecError {
            #expect(error.kind == kind, "\(error)")
            #expect(error.description.hasPrefix(path), "\(error)")
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    func decode(_ bytes: [UInt8], limits: DecodeLimits = DecodeLimits()) throws {
        _ = try ImageFile.decode(Data(bytes), path: "bad.img", limits: limits)
    }

    var png: [UInt8] { get throws { Array(try ImageFixtures.bytes("rgba.png")) } }
    var jpeg: [UInt8] { get throws { Array(try ImageFixtures.bytes("baseline420.jpg")) } }

    @Test func emptyFile() {
        expectError(.empty) { try decode([]) }
    }

    @Test func missingFile() {
        let path = "/nonexistent-folder/none.png"
        expectError(.unreadable, path: path) { _ = try ImageFile.read(URL(fileURLWithPath: path)) }
    }

    @Test func wrongMagic() {
        expectError(.wrongMagic) { try decode(Array("just some text, not an image".utf8)) }
    }

    @Test func unsupportedFormat() {
        expectError(.unsupported) { try decode(Array("GIF89a".utf8) + [UInt8](repeating: 0, count: 20)) }
    }

    @Test func truncatedPNG() throws {
        let bytes = try png
        expectError(.truncated) { try decode(Array(bytes.prefix(bytes.count / 2))) }
        expectError(.truncated) { try decode(Array(bytes.prefix(20))) }
    }

    @Test func pngWithCorruptChunkCRC() throws {
        var bytes = try png
        let idat = try #require(pngChunkOffsets(bytes, type: "IDAT").first)
        let length =
            Int(bytes[idat]) << 24 | Int(bytes[idat + 1]) << 16 | Int(bytes[idat + 2]) << 8 | Int(bytes[idat + 3])
        bytes[idat + 8 + length] ^= 0x5A  // first CRC byte
        expectError(.corrupt) { try decode(bytes) }
    }

    @Test func pngWithCorruptCompressedData() throws {
        var bytes = try png
        let idat = try #require(pngChunkOffsets(bytes, type: "IDAT").first)
        let length =
            Int(bytes[idat]) << 24 | Int(bytes[idat + 1]) << 16 | Int(bytes[idat + 2]) << 8 | Int(bytes[idat + 3])
        for i in 0..<min(length, 64) { bytes[idat + 8 + i] = 0xFF }  // garbage zlib stream with a valid CRC
        let crc = crc32(bytes[(idat + 4)..<(idat + 8 + length)])
        bytes.replaceSubrange(
            (idat + 8 + length)..<(idat + 12 + length),
            with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        expectError(.corrupt) { try decode(bytes) }
    }

    @Test func pngWithZeroWidth() {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let header: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 4, 8, 2, 0, 0, 0]  // width 0, height 4, 8-bit RGB
        let bytes =
            signature + pngChunk("IHDR", header) + pngChunk("IDAT", [0x78, 0x9C, 0x03, 0, 0, 0, 0, 1])
            + pngChunk("IEND", [])
        expectError(.zeroSize) { try decode(bytes) }
    }

    @Test func imageOverThePixelLimit() throws {
        let limits = DecodeLimits(maximumPixels: 1000)
        let pngBytes = try png, jpegBytes = try jpeg
        expectError(.tooLarge) { try decode(pngBytes, limits: limits) }
        expectError(.tooLarge) { try decode(jpegBytes, limits: limits) }
        // and the same files decode under the default limit
        try decode(pngBytes)
        try decode(jpegBytes)
    }

    @Test func truncatedJPEG() throws {
        let bytes = try jpeg
        expectError(.truncated) { try decode(Array(bytes.prefix(bytes.count * 6 / 10))) }
    }

    @Test func jpegCutInsideItsHeader() throws {
        let bytes = try jpeg
        do {
            try decode(Array(bytes.prefix(120)))
            Issue.record("a JPEG cut at 120 bytes decoded")
        } catch let error as ImageCodecError {
            #expect(error.kind == .truncated, "\(error)")
        }
    }

    @Test func jpegWithCorruptEntropyData() throws {
        var bytes = try jpeg
        // overwrite the middle of the scan with bytes that make invalid Huffman codes and markers
        let start = bytes.count / 2
        for i in start..<(start + 40) { bytes[i] = i % 2 == 0 ? 0xFF : 0xD3 }
        expectError(.corrupt) { try decode(bytes) }
        // a lenient decode accepts what libjpeg can recover
        _ = try ImageFile.decode(Data(bytes), path: "bad.img", limits: DecodeLimits(allowsJPEGWarnings: true))
    }

    @Test func writeWithUnknownExtensionOrMissingFolder() throws {
        let image = RasterImage8(width: 2, height: 2, layout: .gray)
        expectError(.writeFailed, path: "/tmp/out.bmp") {
            try ImageFile.write(image, to: URL(fileURLWithPath: "/tmp/out.bmp"))
        }
        expectError(.writeFailed, path: "/nonexistent-folder/out.png") {
            try ImageFile.write(image, to: URL(fileURLWithPath: "/nonexistent-folder/out.png"))
        }
    }
}
