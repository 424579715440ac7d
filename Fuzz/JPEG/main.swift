// Fuzz target: JPEG files as `gknet` reads composites, masks and real images.
//
// Entry points reached by user input: `ImageFile.decode` (signature detection, TurboJPEG header,
// pixel limit, decode with warnings as errors, CMYK/YCCK conversion, EXIF orientation), then the
// conversions every caller makes: `PlanarImage(rgb:)`, `PlanarImage(mask:source:)` for each mask
// source, and `tensor()`; the same bytes are also decoded with `allowsJPEGWarnings`.
//
// libjpeg-turbo itself is not instrumented (Debian's build): coverage and AddressSanitizer see our
// wrapper (header and EXIF parsing, CMYK conversion, orientation) and the conversions.
// Build and run: Fuzz/run.sh JPEG (see docs/robustness.md).
import Foundation
import GKNetImageCodec
import GKNetTensorCore

/// Small enough that a fuzzed header cannot ask for gigabytes; the check itself is still fuzzed.
let strict = DecodeLimits(maximumPixels: 1 << 20)
let lenient = DecodeLimits(maximumPixels: 1 << 20, allowsJPEGWarnings: true)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    for limits in [strict, lenient] {
        guard let image = try? ImageFile.decode(data, path: "fuzz.jpg", limits: limits) else { continue }
        let rgb = PlanarImage(rgb: image)
        guard rgb.channels == 3, rgb.values.count == 3 * rgb.width * rgb.height else {
            fatalError("RGB conversion: wrong size")
        }
        _ = rgb.tensor()
        for source in [MaskSource.first, .luminance, .alpha] {
            let mask = PlanarImage(mask: image, source: source)
            guard mask.values.allSatisfy({ $0 >= 0 && $0 <= 1 }) else { fatalError("mask value outside 0...1") }
        }
    }
    return 0
}
