// Shared helpers of the ImageCodec tests.
import Foundation
import GKNetImageCodec
import GKNetTensorCore
import GKNetTestSupport

enum ImageFixtures {
    static func url(_ name: String) -> URL { Fixtures.url("images/\(name)") }

    static func bytes(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    /// Pillow's decode of fixture `name` (H x W x C sample values).
    static func pillow(_ name: String) throws -> Tensor {
        try Fixtures.load("images/decoded.safetensors").tensor(name)
    }

    /// A fresh temporary folder.
    static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gknet-imagecodec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The samples of a decoded image as floats (for comparisons with Pillow's decode).
func sampleValues(_ image: DecodedImage) -> [Float] {
    switch image {
    case .eightBit(let raster): raster.samples.map { Float($0) }
    case .sixteenBit(let raster): raster.samples.map { Float($0) }
    }
}

/// Random samples for round trips (deterministic).
func randomRaster<Sample: FixedWidthInteger & UnsignedInteger & Sendable>(
    width: Int, height: Int, layout: PixelLayout, seed: UInt64, as: Sample.Type
) -> RasterImage<Sample> {
    var generator = SplitMix64(seed: seed)
    let samples = (0..<(width * height * layout.channels)).map { _ in Sample(truncatingIfNeeded: generator.next()) }
    return RasterImage(width: width, height: height, layout: layout, samples: samples)
}

/// CRC-32 (PNG chunks), for crafting damaged files.
func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

/// A PNG chunk: length, type, data, CRC.
func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    let length = UInt32(data.count)
    let crc = crc32(typeBytes + data)
    return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        + typeBytes + data
        + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
}

/// Offsets of PNG chunks of `type` (the offset of the length field).
func pngChunkOffsets(_ bytes: [UInt8], type: String) -> [Int] {
    var offsets: [Int] = []
    var offset = 8
    while offset + 8 <= bytes.count {
        let length =
            Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8
            | Int(bytes[offset + 3])
        if String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self) == type { offsets.append(offset) }
        offset += 12 + length
    }
    return offsets
}
