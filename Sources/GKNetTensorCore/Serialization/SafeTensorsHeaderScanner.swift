// Finds repeated keys in a JSON header. Foundation's JSONSerialization keeps one of two equal keys
// without a word, and a safetensors header that names a tensor twice is malformed, so the reader
// re-scans the (already validated) header text for keys that repeat within one object.
import Foundation

enum SafeTensorsHeaderScanner {
    /// One open JSON container: an object with the keys seen so far, or an array.
    private struct Frame {
        var isObject: Bool
        var keys: Set<String> = []
        var expectingKey = true
    }

    /// The first key that occurs twice in the same JSON object, at any depth, or nil.
    ///
    /// - Precondition: `json` parses as JSON (the scanner only tracks nesting, strings and commas).
    static func firstDuplicateKey(in json: Data) -> String? {
        let bytes = [UInt8](json)
        var stack: [Frame] = []
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "{"):
                stack.append(Frame(isObject: true))
            case UInt8(ascii: "["):
                stack.append(Frame(isObject: false))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = stack.popLast()
            case UInt8(ascii: ","):
                if !stack.isEmpty { stack[stack.count - 1].expectingKey = true }
            case UInt8(ascii: "\""):
                let start = index
                index += 1
                // Skip to the closing quote; a backslash escapes the byte after it.
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < bytes.count, let top = stack.indices.last, stack[top].isObject, stack[top].expectingKey
                else { break }
                let literal = Data(bytes[start...index])
                // Decode escapes so that "a" and "\u0061" count as the same key.
                let key =
                    (try? JSONSerialization.jsonObject(with: literal, options: .fragmentsAllowed)) as? String
                    ?? String(decoding: literal, as: UTF8.self)
                if !stack[top].keys.insert(key).inserted { return key }
                stack[top].expectingKey = false
            default:
                break
            }
            index += 1
        }
        return nil
    }
}
