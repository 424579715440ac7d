import Foundation
import GKNetTensorCore

/// Writes a command's report as pretty-printed JSON with sorted keys (non-finite numbers as the
/// strings "inf", "-inf" and "nan"), atomically: `gknet evaluate --json`, `gknet calibrate --json`.
func writeReportJSON<Value: Encodable>(_ value: Value, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    try AtomicFile.write(try encoder.encode(value), to: URL(fileURLWithPath: path))
}
