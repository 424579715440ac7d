// Fuzz target: PNG files as `gknet` reads composites, masks and real images.
//
// Entry points reached by user input: `ImageFile.decode` (signature detection, IHDR size check
// against the pixel limit, libpng through the setjmp-guarded helpers of Sources/CGKNetPNG/gk_png.h), then
// the conversions every caller makes: `PlanarImage(rgb:)` and `PlanarImage(mask:source:)` for each
// mask source, and `tensor()`.
//
// Property checked (traps when it fails): a decoded image re-encodes as PNG and decodes to the
// same samples (PNG is lossless). libpng itself is not instrumented (Debian's build): coverage
// and AddressSanitizer see our wrapper, the helpers in gk_png.h and the conversions.
// Build and run: Fuzz/run.sh PNG (see docs/robustness.md).
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// Small enough that a fuzzed header cannot ask for gigabytes; the check itself is still fuzzed.
let limits = DecodeLimits(maximumPixels: 1 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    guard let image = try? ImageFile.decode(data, path: "fuzz.png", limits: limits) else { return 0 }
    let rgb = PlanarImage(rgb: image)
    guard rgb.channels == 3, rgb.values.count == 3 * rgb.width * rgb.height else {
        fatalError("RGB conversion: wrong size")
    }
    _ = rgb.tensor()
    for source in [MaskSource.first, .luminance, .alpha] {
        let mask = PlanarImage(mask: image, source: source)
        guard mask.values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else { fatalError("mask value outside 0...1") }
    }
    // Lossless round trip through our encoder.
    if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
        guard let encoded = try? ImageFile.encode(image, format: .png),
            let again = try? ImageFile.decode(encoded, path: "re-encoded.png", limits: limits)
        else { fatalError("decoded PNG does not re-encode") }
        guard again == image else { fatalError("PNG round trip changed the samples") }
    }
    return 0
}
