// The safetensors file format (Hugging Face): 8-byte little-endian header length N, N bytes of
// JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}},
// then the raw little-endian tensor bytes. We read F32, F16, BF16 and I64 (converted to Float) and
// write any of them. Every malformed file is a thrown error, never a trap.
import Foundation

/// Element types we read and write. I64 exists for integer buffers such as PyTorch BatchNorm's
/// `num_batches_tracked`; its values travel as Float (exact up to 2^24).
public enum SafeTensorsDType: String, Codable, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64"

    public var byteCount: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .i64: 8
        }
    }
}

/// What went wrong with a safetensors file.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One tensor of a safetensors file, converted to float32.
public struct NamedTensor: Sendable {
    public var shape: [Int]
    public var values: [Float]
    public var dtype: SafeTensorsDType
    public init(shape: [Int], values: [Float], dtype: SafeTensorsDType = .f32) {
        self.shape = shape
        self.values = values
        self.dtype = dtype
    }
}

/// The contents of a safetensors file: tensors by name, plus the string metadata.
public struct SafeTensorsFile: Sendable {
    public var tensors: [String: NamedTensor]
    public var metadata: [String: String]

    public init(tensors: [String: NamedTensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Largest header we accept (the format's own reference limit is 100 MB).
    public static let maximumHeaderBytes = 100_000_000

    /// Reads and validates a file. Errors name the file and the problem.
    public init(contentsOf url: URL) throws {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafeTensorsError("\(url.path): cannot read file (\(error.localizedDescription))")
        }
        do {
            try self.init(bytes: bytes)
        } catch let error as SafeTensorsError {
            throw SafeTensorsError("\(url.path): \(error.message)")
        }
    }

    /// Parses a whole file held in memory.
    public init(bytes: Data) throws {
        let (table, headerLength) = try Self.header(of: bytes)
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in table {
            if name == "__metadata__" {
                metadata = try Self.metadata(value)
            } else {
                entries.append(try Self.entry(name, value, dataLength: dataLength))
            }
        }
        // Byte ranges must not overlap (the format also asks that they tile the data section).
        let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.begin < previous.end {
            throw SafeTensorsError("tensors \"\(previous.name)\" and \"\(next.name)\" have overlapping data_offsets")
        }
        var tensors: [String: NamedTensor] = [:]
        bytes.withUnsafeBytes { raw in
            for entry in entries {
                let base = raw.baseAddress! + dataStart + entry.begin
                let count = (entry.end - entry.begin) / entry.dtype.byteCount
                tensors[entry.name] = NamedTensor(
                    shape: entry.shape,
                    values: Self.decode(UnsafeRawPointer(base), count: count, dtype: entry.dtype),
                    dtype: entry.dtype)
            }
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// One tensor's header entry, checked against the data section.
    private struct Entry {
        var name: String, dtype: SafeTensorsDType, shape: [Int], begin: Int, end: Int
    }

    /// The header's JSON object and its length in bytes (after the 8-byte length field).
    private static func header(of bytes: Data) throws -> (table: [String: Any], length: Int) {
        guard bytes.count >= 8 else {
            throw SafeTensorsError(
                "truncated: \(bytes.count) bytes, a safetensors file starts with an 8-byte header length")
        }
        let headerLength64: UInt64 = bytes.withUnsafeBytes { raw in
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(raw[i]) << (8 * UInt64(i)) }
            return value
        }
        guard headerLength64 <= UInt64(maximumHeaderBytes) else {
            throw SafeTensorsError("header length \(headerLength64) exceeds the \(maximumHeaderBytes)-byte limit")
        }
        let headerLength = Int(headerLength64)
        guard headerLength <= bytes.count - 8 else {
            throw SafeTensorsError(
                "header length \(headerLength) is larger than the file (\(bytes.count - 8) bytes after the length)")
        }
        let start = bytes.startIndex
        let headerData = bytes[(start + 8)..<(start + 8 + headerLength)]
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(headerData))
        } catch {
            throw SafeTensorsError("header is not valid JSON")
        }
        guard let table = json as? [String: Any] else {
            throw SafeTensorsError("header is not a JSON object")
        }
        // JSONSerialization keeps one of two equal keys silently; the format forbids repeats.
        if let duplicate = SafeTensorsHeaderScanner.firstDuplicateKey(in: Data(headerData)) {
            throw SafeTensorsError("header repeats the name \"\(duplicate)\"")
        }
        return (table, headerLength)
    }

    /// The `__metadata__` object: strings only.
    private static func metadata(_ value: Any) throws -> [String: String] {
        guard let dictionary = value as? [String: Any] else {
            throw SafeTensorsError("__metadata__ is not an object of strings")
        }
        var metadata: [String: String] = [:]
        for (key, item) in dictionary {
            guard let text = item as? String else {
                throw SafeTensorsError("__metadata__ value for \"\(key)\" is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    /// A tensor's entry: a known dtype, a sane shape, and data offsets inside the data section that
    /// span exactly the shape's bytes.
    private static func entry(_ name: String, _ value: Any, dataLength: Int) throws -> Entry {
        guard let entry = value as? [String: Any] else {
            throw SafeTensorsError("tensor \"\(name)\": entry is not an object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw SafeTensorsError("tensor \"\(name)\": missing dtype")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError(
                "tensor \"\(name)\": unsupported dtype \(dtypeName) (F32, F16, BF16 and I64 are read)")
        }
        guard let shapeValues = entry["shape"] as? [Any], let shape = Self.integers(shapeValues),
            shape.allSatisfy({ $0 >= 0 })
        else {
            throw SafeTensorsError("tensor \"\(name)\": shape is not a list of non-negative integers")
        }
        guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = Self.integers(offsetValues),
            offsets.count == 2
        else {
            throw SafeTensorsError("tensor \"\(name)\": data_offsets is not a pair of integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, end >= begin else {
            throw SafeTensorsError(
                "tensor \"\(name)\": data_offsets [\(begin), \(end)] are not an increasing pair of non-negative "
                    + "offsets"
            )
        }
        guard end <= dataLength else {
            throw SafeTensorsError(
                "tensor \"\(name)\": data_offsets [\(begin), \(end)] out of bounds: the data section has "
                    + "\(dataLength) bytes (file truncated?)"
            )
        }
        var elementCount = 1
        for dimension in shape {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= Int(Int32.max) * 64 else {
                throw SafeTensorsError("tensor \"\(name)\": shape \(shape) is absurdly large")
            }
            elementCount = product
        }
        guard elementCount * dtype.byteCount == end - begin else {
            throw SafeTensorsError(
                "tensor \"\(name)\": \(dtype.rawValue) shape \(shape) needs \(elementCount * dtype.byteCount) "
                    + "bytes but data_offsets span \(end - begin)"
            )
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Converts a JSON array to integers, or nil if any element is not an integral number.
    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            // NOTE: on Linux `NSNumber(0) is Bool` holds, so booleans are told apart by their
            // Objective-C type code ("c"), which JSON numbers never have.
            guard let number = value as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
            let double = number.doubleValue
            guard double >= -9.0e15, double <= 9.0e15, double == double.rounded() else { return nil }
            result.append(Int(double))
        }
        return result
    }

    private static func decode(_ base: UnsafeRawPointer, count: Int, dtype: SafeTensorsDType) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        switch dtype {
        case .f32:
            for i in 0..<count {
                values[i] = Float(
                    bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
        case .f16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                values[i] = Float(halfBits: bits)
            }
        case .bf16:
            for i in 0..<count {
                let bits = UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                values[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        case .i64:
            for i in 0..<count {
                values[i] = Float(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
            }
        }
        return values
    }

    /// Serialises to bytes; tensors are laid out in name order, each stored as its `dtype`.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let tensor = tensors[name]!
            guard tensor.shape.elementCount == tensor.values.count else {
                throw SafeTensorsError(
                    "tensor \"\(name)\": \(tensor.values.count) values do not fill shape \(tensor.shape)")
            }
            if tensor.dtype == .i64, let bad = tensor.values.first(where: { $0 != $0.rounded() || abs($0) > 9.0e18 }) {
                throw SafeTensorsError("tensor \"\(name)\": I64 tensor holds the non-integer value \(bad)")
            }
            let size = tensor.values.count * tensor.dtype.byteCount
            header[name] =
                ["dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [offset, offset + size]]
                as [String: Any]
            offset += size
        }
        var headerBytes = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data section starts 8-byte aligned.
        while (headerBytes.count % 8) != 0 { headerBytes.append(0x20) }
        var output = Data(capacity: 8 + headerBytes.count + offset)
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { output.append(contentsOf: $0) }
        output.append(headerBytes)
        for name in names {
            let tensor = tensors[name]!
            switch tensor.dtype {
            case .f32:
                tensor.values.withUnsafeBytes { output.append(contentsOf: $0) }
            case .f16:
                var bits = tensor.values.map { $0.halfBits.littleEndian }
                bits.withUnsafeMutableBytes { output.append(contentsOf: $0) }
            case .bf16:
                var bits = tensor.values.map { $0.bfloat16Bits.littleEndian }
                bits.withUnsafeMutableBytes { output.append(contentsOf: $0) }
            case .i64:
                var integers = tensor.values.map { Int64($0).littleEndian }
                integers.withUnsafeMutableBytes { output.append(contentsOf: $0) }
            }
        }
        return output
    }

    /// Writes atomically: to a temporary file in the same folder, then renamed over `url`.
    public func write(to url: URL) throws {
        try AtomicFile.write(try serialized(), to: url)
    }
}

extension Float {
    /// IEEE half-precision bits to float (exact).
    public init(halfBits bits: UInt16) {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            // zero or subnormal: value = mantissa * 2^-24
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            self = sign != 0 ? -magnitude : magnitude
        } else if exponent == 31 {
            self = Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        } else {
            self = Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
        }
    }

    /// Float to IEEE half-precision bits, rounding to nearest even (overflow becomes infinity).
    public var halfBits: UInt16 {
        let bits = bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 31 { return sign | 0x7C00 }
        if halfExponent <= 0 {
            if halfExponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - halfExponent)
            var half = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if remainder > halfway || (remainder == halfway && (half & 1) == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1) { half += 1 }
        return sign | UInt16(half)
    }

    /// Float to bfloat16 bits, rounding to nearest even.
    public var bfloat16Bits: UInt16 {
        let bits = bitPattern
        if isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
