import GKNetRequestForms
// Fuzz target: the upload path of `gknet serve` before any image is decoded: a Content-Type (the
// input's first line) and a body (the rest), read by RequestForms' FormReader in pieces whose size
// the input's first body byte picks, as the server reads them from the network. Any FormError is
// a correct answer; a trap, a leak or a hang is a bug (multipart-kit 4.7.1 traps on a non-ASCII
// header-name byte unless the guard parser refuses it first).
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let newline = bytes.firstIndex(of: 10) else { return 0 }
    let contentType = String(decoding: bytes[..<newline], as: UTF8.self)
    let body = bytes[(newline + 1)...]
    var limits = FormLimits()
    limits.maximumBodyBytes = 1 << 20
    limits.maximumHeaderBytes = 1024
    guard
        let reader = try? FormReader(
            contentType: contentType, wanted: ["composite", "mask", "format", "x"], limits: limits)
    else { return 0 }
    let pieceSize = 1 + Int(body.first ?? 0) * 3
    var offset = body.startIndex
    do {
        while offset < body.endIndex {
            let end = min(body.endIndex, offset + pieceSize)
            try reader.consume(ByteBuffer(bytes: body[offset..<end]))
            offset = end
        }
        try reader.finish()
        // what the server does next with the fields it kept
        for (_, value) in reader.fields { _ = String(buffer: value).count }
    } catch {
        return 0
    }
    return 0
}
