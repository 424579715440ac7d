// RequestForms' FormReader: multipart-kit's parser fed piece by piece gives the same fields for any
// split of the body, refuses malformed and hostile bodies with a FormError (never a trap), and
// reads them in time linear in their size.
import Foundation
import NIOCore
import Testing

@testable import GKNetRequestForms

private func body(_ fields: [(String, Data)], boundary: String = "XyZ") -> [UInt8] {
    var bytes = Data()
    for (name, data) in fields {
        bytes.append(Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n".utf8))
        bytes.append(data)
        bytes.append(Data("\r\n".utf8))
    }
    bytes.append(Data("--\(boundary)--\r\n".utf8))
    return Array(bytes)
}

/// Reads `bytes` in pieces of `sizes` (cycled).
private func read(
    _ bytes: [UInt8], sizes: [Int] = [1 << 20], wanted: Set<String> = ["a", "b"], limits: FormLimits = FormLimits(),
    contentType: String = "multipart/form-data; boundary=XyZ"
) throws -> [String: [UInt8]] {
    let reader = try FormReader(contentType: contentType, wanted: wanted, limits: limits)
    var offset = 0, turn = 0
    while offset < bytes.count {
        let size = min(sizes[turn % sizes.count], bytes.count - offset)
        try reader.consume(ByteBuffer(bytes: bytes[offset..<offset + size]))
        offset += size
        turn += 1
    }
    try reader.finish()
    return reader.fields.mapValues { Array($0.readableBytesView) }
}

private func kind(_ body: () throws -> Void) -> FormError.Kind? {
    do {
        try body()
        return nil
    } catch let error as FormError {
        return error.kind
    } catch {
        return nil
    }
}

@Suite struct FormReaderTests {
    @Test func anySplitOfTheBodyGivesTheSameFields() throws {
        var generator = SystemRandomNumberGenerator()
        // binary data with CRs, LFs, dashes and bytes >= 128, as in images
        let a = (0..<5000).map { _ in [13, 10, 45, 0xC3, 0xFF, 0x41][Int.random(in: 0..<6, using: &generator)] }
            .map(UInt8.init)
        let b = Array("x=\r\n--XyY-not-quite\r\n--Xy".utf8)
        let bytes = body([("a", Data(a)), ("ignored", Data(repeating: 1, count: 100)), ("b", Data(b))])
        for sizes in [[1], [2, 3], [7], [4096], [1 << 20], [1, 500, 13]] {
            let fields = try read(bytes, sizes: sizes)
            #expect(fields["a"] == a, "pieces \(sizes)")
            #expect(fields["b"] == b, "pieces \(sizes)")
            #expect(fields["ignored"] == nil)
        }
    }

    @Test func nonASCIIHeaderNameIsAnErrorInEverySplit() {
        // multipart-kit 4.7.1 traps on a header-name byte >= 128 (found by schemathesis); the guard parser
        // refuses it first, wherever the pieces are cut
        var bytes = Array("--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n".utf8)
        bytes += [0xC3, 0xA9, 0x3A, 0x20, 0x78, 0x0D, 0x0A, 0x0D, 0x0A]
        bytes += Array("x\r\n--XyZ--\r\n".utf8)
        for sizes in [[1], [3], [1 << 20]] {
            #expect(kind { _ = try read(bytes, sizes: sizes) } == .malformed)
        }
        // UTF-8 in a header value (a file name) is fine
        let utf8 = Array(
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"fotó.png\"\r\n\r\nok\r\n--XyZ--\r\n".utf8)
        #expect((try? read(utf8, sizes: [1]))?["a"] == Array("ok".utf8))
    }

    @Test func hostileBodiesAreRefused() {
        var limits = FormLimits()
        limits.maximumBodyBytes = 1 << 20
        // boundary lines only, no blank line
        let boundaries = [UInt8](String(repeating: "--XyZ\r\n", count: 10_000).utf8)
        #expect(kind { _ = try read(boundaries, limits: limits) } == .malformed)
        // 10,000 tiny parts
        let parts = body((0..<10_000).map { ("p\($0)", Data("1".utf8)) })
        #expect(kind { _ = try read(parts, limits: limits) } == .tooManyParts)
        // one header line longer than the header limit, sent in small pieces
        let longHeader =
            Array("--XyZ\r\nContent-Disposition: form-data; name=\"".utf8) + [UInt8](repeating: 65, count: 100_000)
        #expect(kind { _ = try read(longHeader, sizes: [1000], limits: limits) } == .headersTooLarge)
        // too many header lines in one part
        let manyHeaders = Array(
            ("--XyZ\r\n" + String(repeating: "X-A: 1\r\n", count: 50) + "\r\nx\r\n--XyZ--\r\n").utf8)
        #expect(kind { _ = try read(manyHeaders) } == .malformed)
        // a body over the size limit
        let big = body([("a", Data(repeating: 0, count: 2 << 20))])
        #expect(kind { _ = try read(big, sizes: [65536], limits: limits) } == .tooLarge)
        // cut short inside a part, and empty
        let whole = body([("a", Data("hello".utf8))])
        #expect(kind { _ = try read(Array(whole.prefix(whole.count - 12))) } == .malformed)
        #expect(kind { _ = try read([]) } == .malformed)
    }

    @Test func contentTypeNeedsAGoodBoundary() {
        #expect(kind { _ = try FormReader.boundary(contentType: nil) } == .notMultipart)
        #expect(kind { _ = try FormReader.boundary(contentType: "application/json") } == .notMultipart)
        #expect(kind { _ = try FormReader.boundary(contentType: "multipart/form-data") } == .notMultipart)
        #expect(kind { _ = try FormReader.boundary(contentType: "multipart/form-data; boundary=") } == .notMultipart)
        #expect(
            kind { _ = try FormReader.boundary(contentType: "multipart/form-data; boundary=\"\"") } == .notMultipart)
        let long = String(repeating: "b", count: 71)
        #expect(
            kind { _ = try FormReader.boundary(contentType: "multipart/form-data; boundary=\(long)") } == .notMultipart)
        #expect(
            kind { _ = try FormReader.boundary(contentType: "multipart/form-data; boundary=a\u{e9}") } == .notMultipart)
        #expect(
            (try? FormReader.boundary(contentType: "multipart/form-data; charset=utf-8; boundary=\"a b\"")) == "a b")
        #expect((try? FormReader.boundary(contentType: "Multipart/Form-Data; BOUNDARY=xyz")) == "xyz")
    }

    /// Time per byte may not grow with the size: 4 MiB of boundary-like lines inside one part take
    /// at most 4 x the time per byte of 256 KiB, plus 50 ms (a quadratic parse would take 16 x).
    @Test func readingTimeIsLinearInTheBodySize() throws {
        func seconds(_ size: Int) throws -> Double {
            let filler = [UInt8](String(repeating: "\r\n--XyZ", count: size / 7).utf8).map { $0 == 90 ? 89 : $0 }
            let bytes = body([("a", Data(filler))])
            var limits = FormLimits()
            limits.maximumBodyBytes = 64 << 20
            let start = ContinuousClock.now
            _ = try read(bytes, sizes: [65536], limits: limits)
            let elapsed = ContinuousClock.now - start
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        let small = try seconds(256 << 10), large = try seconds(4 << 20)
        #expect(large < 4 * 16 * small + 0.05, "256 KiB \(small) s, 4 MiB \(large) s")
    }
}
