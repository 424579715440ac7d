// PNG encoding for large images on every thread (harmonize outputs): libpng filters and deflates
// on one core, which for a 4096x4096 result takes longer than the network. Here the rows are
// filtered in parallel (per row the filter with the smallest sum of absolute filtered bytes,
// libpng's heuristic), and the filtered data is deflated as one strip per thread, each strip primed
// with the 32 KiB before it as dictionary and ended with a sync flush (as pigz does), so the strips
// form one zlib stream. The file is a plain PNG any decoder reads.
import CGKNetZlib
import Foundation
import GKNetTensorCore

/// A PNG encoder that filters and deflates on every thread (see the file header).
public enum ParallelPNG {
    /// Encodes an 8-bit or 16-bit raster (any layout) as PNG with zlib `level` (0-9; level 1 uses
    /// zlib's run-length strategy: on Paeth-filtered photos it is as fast as level 1 and about as
    /// small as level 6), deflated in `strips` pieces (default: one per thread, at least 64 rows each).
    public static func encode<Sample>(_ image: RasterImage<Sample>, level: Int, strips: Int? = nil, path: String) throws
        -> Data
    {
        guard image.width > 0, image.height > 0 else {
            throw ImageCodecError(
                path: path, kind: .writeFailed, detail: "cannot encode a \(image.width)x\(image.height) image")
        }
        let bytesPerSample = Sample.bitWidth / 8
        let pixelBytes = image.layout.channels * bytesPerSample
        let rowBytes = image.width * pixelBytes
        // PNG stores 16-bit samples big-endian
        let filtered: [UInt8] = image.samples.withUnsafeBytes { bytes in
            guard bytesPerSample == 2 && UInt16(littleEndian: 1) == 1 else {
                return filterRows(
                    bytes.bindMemory(to: UInt8.self), height: image.height, rowBytes: rowBytes, pixelBytes: pixelBytes)
            }
            var swapped = [UInt8](bytes)
            swapped.withUnsafeMutableBufferPointer { b in
                parallelChunks(b.count / 2, minimumPerThread: 1 << 18) { range in
                    for i in range { b.swapAt(2 * i, 2 * i + 1) }
                }
            }
            return swapped.withUnsafeBufferPointer {
                filterRows($0, height: image.height, rowBytes: rowBytes, pixelBytes: pixelBytes)
            }
        }
        let stream = try deflateStrips(
            filtered, level: level, strips: strips ?? max(1, min(Threading.count, image.height / 64)), path: path)

        var file = Data(capacity: stream.pieces.reduce(200) { $0 + $1.count + 12 })
        file.append(contentsOf: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.appendBigEndian(UInt32(image.width))
        header.appendBigEndian(UInt32(image.height))
        let colourType: UInt8 =
            switch image.layout {
            case .gray: 0
            case .grayAlpha: 4
            case .rgb: 2
            case .rgba: 6
            }
        header.append(contentsOf: [UInt8(Sample.bitWidth), colourType, 0, 0, 0])
        file.appendChunk("IHDR", header)
        // The zlib stream split over IDAT chunks (decoders concatenate them): its 2-byte header,
        // one chunk per strip (CRCs computed in parallel with the deflate), its Adler-32.
        file.appendChunk("IDAT", Data(stream.header))
        for (piece, crc) in zip(stream.pieces, stream.crcs) {
            file.appendBigEndian(UInt32(piece.count))
            file.append(contentsOf: Array("IDAT".utf8))
            file.append(contentsOf: piece)
            file.appendBigEndian(UInt32(crc))
        }
        file.appendChunk("IDAT", Data(stream.trailer))
        file.appendChunk("IEND", Data())
        return file
    }

    /// Each row prefixed by its filter type: the one of None, Sub, Up, Average, Paeth with the
    /// smallest sum of |filtered byte| (bytes read as signed).
    static func filterRows(_ raw: UnsafeBufferPointer<UInt8>, height: Int, rowBytes: Int, pixelBytes: Int) -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: rowBytes)
        return [UInt8](unsafeUninitializedCapacity: height * (rowBytes + 1)) { buffer, initialized in
            let out = buffer.baseAddress!
            zeros.withUnsafeBufferPointer { zeros in
                parallelChunks(height, minimumPerThread: 8) { rows in
                    for y in rows {
                        let row = raw.baseAddress! + y * rowBytes
                        let up = y == 0 ? zeros.baseAddress! : row - rowBytes
                        let target = out + y * (rowBytes + 1)
                        let type = cheapestFilter(row: row, up: up, count: rowBytes, pixelBytes: pixelBytes)
                        target[0] = type
                        apply(filter: type, row: row, up: up, count: rowBytes, pixelBytes: pixelBytes, into: target + 1)
                    }
                }
            }
            initialized = height * (rowBytes + 1)
        }
    }

    /// |v| of a byte read as signed, libpng's filter cost.
    @inline(__always) static func cost(_ v: UInt8) -> UInt32 {
        let signed = Int32(Int8(bitPattern: v))
        return UInt32(signed < 0 ? -signed : signed)
    }

    /// The Paeth predictor of PNG: whichever of left, up, up-left is closest to left + up - up-left.
    @inline(__always) static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let (ia, ib, ic) = (Int16(a), Int16(b), Int16(c))
        let pa = abs(ib - ic), pb = abs(ia - ic), pc = abs(ia + ib - 2 * ic)
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c
    }

    /// Sums of |filtered byte| for each filter type, in one pass (branch-free, so it vectorizes).
    static func cheapestFilter(row: UnsafePointer<UInt8>, up: UnsafePointer<UInt8>, count: Int, pixelBytes: Int)
        -> UInt8
    {
        var none: UInt32 = 0, sub: UInt32 = 0, upCost: UInt32 = 0, average: UInt32 = 0, paethCost: UInt32 = 0
        for i in 0..<min(pixelBytes, count) {
            let x = row[i], b = up[i]
            none &+= cost(x)
            sub &+= cost(x)
            upCost &+= cost(x &- b)
            average &+= cost(x &- b / 2)
            paethCost &+= cost(x &- b)
        }
        if count > pixelBytes {
            for i in pixelBytes..<count {
                let x = row[i], a = row[i - pixelBytes], b = up[i], c = up[i - pixelBytes]
                none &+= cost(x)
                sub &+= cost(x &- a)
                upCost &+= cost(x &- b)
                average &+= cost(x &- UInt8(truncatingIfNeeded: (UInt16(a) + UInt16(b)) >> 1))
                paethCost &+= cost(x &- paeth(a, b, c))
            }
        }
        var best: UInt8 = 0, smallest = none
        for (type, total) in [(UInt8(1), sub), (2, upCost), (3, average), (4, paethCost)] where total < smallest {
            best = type
            smallest = total
        }
        return best
    }

    static func apply(
        filter: UInt8, row: UnsafePointer<UInt8>, up: UnsafePointer<UInt8>, count: Int, pixelBytes: Int,
        into out: UnsafeMutablePointer<UInt8>
    ) {
        let n = min(pixelBytes, count)
        switch filter {
        case 0:
            out.update(from: row, count: count)
        case 1:
            for i in 0..<n { out[i] = row[i] }
            for i in n..<count { out[i] = row[i] &- row[i - pixelBytes] }
        case 2:
            for i in 0..<count { out[i] = row[i] &- up[i] }
        case 3:
            for i in 0..<n { out[i] = row[i] &- up[i] / 2 }
            for i in n..<count {
                out[i] = row[i] &- UInt8(truncatingIfNeeded: (UInt16(row[i - pixelBytes]) + UInt16(up[i])) >> 1)
            }
        default:
            for i in 0..<n { out[i] = row[i] &- up[i] }
            for i in n..<count { out[i] = row[i] &- paeth(row[i - pixelBytes], up[i], up[i - pixelBytes]) }
        }
    }

    /// The pieces of a zlib stream: its header, the deflate data of each strip with the CRC-32 of
    /// "IDAT" + that data (for its PNG chunk), and the Adler-32 trailer.
    struct ZlibPieces {
        var header: [UInt8]
        var pieces: [[UInt8]]
        var crcs: [uLong]
        var trailer: [UInt8]
    }

    /// Deflates `data` as `strips` pieces in parallel (each primed with the 32 KiB before it and
    /// ended by a sync flush, the last by the final block) forming one zlib stream.
    static func deflateStrips(_ data: [UInt8], level: Int, strips: Int, path: String) throws -> ZlibPieces {
        let level = Int32(min(max(level, 0), 9))
        let stripLength = (data.count + strips - 1) / strips
        var pieces = [[UInt8]](repeating: [], count: strips)
        var checksums = [uLong](repeating: 0, count: strips)
        var crcs = [uLong](repeating: 0, count: strips)
        var failures = [Int32](repeating: Z_OK, count: strips)
        let chunkType = Array("IDAT".utf8)
        data.withUnsafeBufferPointer { input in
            pieces.withUnsafeMutableBufferPointer { pieces in
                checksums.withUnsafeMutableBufferPointer { checksums in
                    crcs.withUnsafeMutableBufferPointer { crcs in
                        failures.withUnsafeMutableBufferPointer { failures in
                            parallelChunks(strips, minimumPerThread: 1) { range in
                                for strip in range {
                                    let start = min(data.count, strip * stripLength),
                                        end = min(data.count, start + stripLength)
                                    let base = UnsafeMutablePointer(mutating: input.baseAddress!)
                                    checksums[strip] = adler32(1, base + start, uInt(end - start))
                                    let (status, piece) = deflatePiece(
                                        base + start, count: end - start, dictionary: min(32_768, start), level: level,
                                        isLast: strip == strips - 1)
                                    guard status == Z_OK else {
                                        failures[strip] = status
                                        continue
                                    }
                                    var crc = crc32(0, chunkType, 4)
                                    piece.withUnsafeBufferPointer { crc = crc32(crc, $0.baseAddress, uInt($0.count)) }
                                    crcs[strip] = crc
                                    pieces[strip] = piece
                                }
                            }
                        }
                    }
                }
            }
        }
        if let failure = failures.first(where: { $0 != Z_OK }) {
            throw ImageCodecError(path: path, kind: .writeFailed, detail: "zlib deflate failed (status \(failure))")
        }
        var adler = checksums[0]
        for strip in 1..<strips {
            let start = min(data.count, strip * stripLength), end = min(data.count, start + stripLength)
            adler = adler32_combine(adler, checksums[strip], off_t(end - start))
        }
        // CMF 0x78 (deflate, 32 KiB window); FLG gives the level class and makes CMF*256+FLG % 31 == 0.
        let flag: UInt8 = level <= 1 ? 0x01 : level <= 5 ? 0x5E : level == 6 ? 0x9C : 0xDA
        let a = UInt32(adler)
        return ZlibPieces(
            header: [0x78, flag], pieces: pieces, crcs: crcs,
            trailer: [UInt8(a >> 24), UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF)])
    }

    /// Raw deflate of `count` bytes at `input`, primed with the `dictionary` bytes before it.
    /// - Returns: Z_OK and the data, or the failing zlib status.
    static func deflatePiece(
        _ input: UnsafeMutablePointer<UInt8>, count: Int, dictionary: Int, level: Int32, isLast: Bool
    ) -> (Int32, [UInt8]) {
        var stream = z_stream()
        var status = deflateInit2_(
            &stream, level, Z_DEFLATED, -15, 8, level == 1 ? Z_RLE : Z_DEFAULT_STRATEGY, zlibVersion(),
            Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { return (status, []) }
        defer { deflateEnd(&stream) }
        if dictionary > 0 {
            status = deflateSetDictionary(&stream, input - dictionary, uInt(dictionary))
            guard status == Z_OK else { return (status, []) }
        }
        let capacity = Int(deflateBound(&stream, uLong(count))) + 64
        var produced = 0
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            stream.next_in = input
            stream.avail_in = uInt(count)
            stream.next_out = buffer.baseAddress!
            stream.avail_out = uInt(capacity)
            status = deflate(&stream, isLast ? Z_FINISH : Z_SYNC_FLUSH)
            produced = capacity - Int(stream.avail_out)
            initialized = produced
        }
        guard status == (isLast ? Z_STREAM_END : Z_OK), stream.avail_in == 0 else {
            return (status == Z_OK ? Z_BUF_ERROR : status, [])
        }
        return (Z_OK, output)
    }
}

extension Data {
    mutating func appendBigEndian(_ value: UInt32) {
        append(contentsOf: [
            UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF),
        ])
    }

    /// A PNG chunk: length, type, data, CRC-32 of type and data.
    mutating func appendChunk(_ type: String, _ data: Data) {
        appendBigEndian(UInt32(data.count))
        let typeBytes = Data(type.utf8)
        append(typeBytes)
        append(data)
        var crc = crc32(0, nil, 0)
        typeBytes.withUnsafeBytes { crc = crc32(crc, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count)) }
        data.withUnsafeBytes { bytes in
            if let base = bytes.bindMemory(to: Bytef.self).baseAddress { crc = crc32(crc, base, uInt(bytes.count)) }
        }
        appendBigEndian(UInt32(crc))
    }
}
