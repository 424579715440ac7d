import Foundation
import GKNetTensorCore
import Testing

/// Issue 3, point 6: malformed files are thrown errors, never traps. One test per case.
@Suite struct SafeTensorsBadFileTests {
    /// 8-byte little-endian header length, the header text, then the data bytes.
    func file(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let headerBytes = Array(header.utf8)
        var bytes = Data()
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: headerBytes)
        bytes.append(contentsOf: data)
        return bytes
    }

    /// A valid file: a [0, 16) F32 [2, 2], b [16, 24) F32 [2].
    let goodHeader =
        #"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,"#
        + #"24]}}"#

    /// Parses `bytes` and returns the error message; records a failure if parsing succeeds.
    func failure(_ bytes: Data, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            _ = try SafeTensorsFile(bytes: bytes)
            Issue.record("malformed file was accepted", sourceLocation: sourceLocation)
            return ""
        } catch let error as SafeTensorsError {
            return error.message
        } catch {
            Issue.record("unexpected error type \(error)", sourceLocation: sourceLocation)
            return ""
        }
    }

    @Test func theValidBaseFileLoads() throws {
        let loaded = try SafeTensorsFile(bytes: file(header: goodHeader, data: Array(repeating: 0, count: 24)))
        #expect(loaded.tensors.count == 2)
    }

    @Test func truncatedFile() throws {
        let whole = file(header: goodHeader, data: Array(repeating: 0, count: 24))
        #expect(failure(whole.prefix(whole.count - 3)).contains("truncated"))
        #expect(failure(whole.prefix(5)).contains("truncated"))
        #expect(failure(Data()).contains("truncated"))
        // Cut inside the header: the declared length no longer fits.
        #expect(failure(whole.prefix(20)).contains("larger than the file"))
    }

    @Test func headerLengthLargerThanTheFile() {
        #expect(
            failure(file(header: goodHeader, data: Array(repeating: 0, count: 24), declaredLength: 4096)).contains(
                "larger than the file"))
        #expect(failure(file(header: "{}", declaredLength: UInt64.max)).contains("exceeds"))
    }

    @Test func invalidJSON() {
        #expect(failure(file(header: #"{"a": {"dtype": "F32", "#)).contains("not valid JSON"))
        #expect(failure(file(header: "[1, 2, 3]")).contains("not a JSON object"))
        #expect(failure(file(header: String(repeating: "\u{FF}", count: 4))).contains("not valid JSON"))
    }

    @Test func offsetsOutOfBounds() {
        let header = #"{"a":{"dtype":"F32","shape":[100],"data_offsets":[0,400]}}"#
        #expect(failure(file(header: header, data: Array(repeating: 0, count: 16))).contains("out of bounds"))
        let negative = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#
        #expect(failure(file(header: negative, data: Array(repeating: 0, count: 16))).contains("data_offsets"))
        let reversed = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}"#
        #expect(failure(file(header: reversed, data: Array(repeating: 0, count: 16))).contains("data_offsets"))
        let fractional = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#
        #expect(failure(file(header: fractional, data: Array(repeating: 0, count: 16))).contains("data_offsets"))
    }

    @Test func overlappingOffsets() {
        let header =
            #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,"#
            + #"24]}}"#
        #expect(failure(file(header: header, data: Array(repeating: 0, count: 24))).contains("overlapping"))
    }

    @Test func dtypeAndShapeDisagreeWithTheByteLength() {
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        #expect(failure(file(header: header, data: Array(repeating: 0, count: 8))).contains("needs 12 bytes"))
        let half = #"{"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,16]}}"#
        #expect(failure(file(header: half, data: Array(repeating: 0, count: 16))).contains("needs 8 bytes"))
        let huge = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#
        #expect(failure(file(header: huge, data: Array(repeating: 0, count: 8))).contains("absurdly large"))
        let negative = #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#
        #expect(failure(file(header: negative, data: Array(repeating: 0, count: 8))).contains("shape"))
    }

    @Test func unknownDtype() {
        let header = #"{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#
        #expect(failure(file(header: header, data: [0, 0])).contains("unsupported dtype F8_E4M3"))
        let missing = #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#
        #expect(failure(file(header: missing, data: Array(repeating: 0, count: 8))).contains("missing dtype"))
    }

    @Test func duplicateNames() {
        let header =
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,"#
            + #"8]}}"#
        #expect(failure(file(header: header, data: Array(repeating: 0, count: 8))).contains("repeats the name \"a\""))
        // The same name spelled with an escape is still the same name.
        let escaped =
            #"{"ab":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a\u0062":{"dtype":"F32","shape":[1],"#
            + #""data_offsets":[4,8]}}"#
        #expect(failure(file(header: escaped, data: Array(repeating: 0, count: 8))).contains("repeats the name \"ab\""))
        // Keys in different objects may repeat; quotes inside strings do not confuse the scanner.
        let fine =
            #"{"__metadata__":{"x\"y":"{\"a\":1}"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect(
            (try? SafeTensorsFile(bytes: file(header: fine, data: Array(repeating: 0, count: 8))))?.tensors.count == 2)
    }

    @Test func badMetadata() {
        let header = #"{"__metadata__":{"step":7}}"#
        #expect(failure(file(header: header)).contains("not a string"))
    }

    @Test func unreadableFileNamesThePath() {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent(
            "no-such-\(UUID().uuidString).safetensors")
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensorsFile(contentsOf: url) }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains(url.path), "the error should name \(url.path): \(message)")
        #expect(!message.contains("\n"), "one line: \(message)")
    }
}
