import Foundation

/// JSON text of values built in Swift (String, Int, Double, Bool, NSNull, arrays and string-keyed dictionaries),
/// pretty-printed with sorted keys. Unlike Foundation's serializer it writes a whole Double with its ".0": Python
/// then reads a float, which transformers' typed configurations require (final_logit_softcapping: 30.0, not 30).
enum JSONText {
    static func encode(_ value: Any) throws -> String {
        var out = ""
        try write(value, indent: "", into: &out)
        return out
    }

    private static func write(_ value: Any, indent: String, into out: inout String) throws {
        let inner = indent + "  "
        switch value {
        case let b as Bool: out += b ? "true" : "false"
        case let i as Int: out += "\(i)"
        case let d as Double:
            guard d.isFinite else {
                throw EncodingError.invalidValue(d, .init(codingPath: [], debugDescription: "\(d)"))
            }
            out += "\(d)"  // the shortest text that reads back to d, with ".0" or an exponent
        case let s as String:
            out += String(
                decoding: try JSONSerialization.data(withJSONObject: s, options: .fragmentsAllowed), as: UTF8.self)
        case is NSNull: out += "null"
        case let array as [Any]:
            guard !array.isEmpty else { out += "[]"; return }
            out += "[\n"
            for (k, element) in array.enumerated() {
                out += inner
                try write(element, indent: inner, into: &out)
                out += k + 1 < array.count ? ",\n" : "\n"
            }
            out += indent + "]"
        case let object as [String: Any]:
            guard !object.isEmpty else { out += "{}"; return }
            out += "{\n"
            let keys = object.keys.sorted()
            for (k, key) in keys.enumerated() {
                out += inner
                try write(key, indent: inner, into: &out)
                out += ": "
                try write(object[key]!, indent: inner, into: &out)
                out += k + 1 < keys.count ? ",\n" : "\n"
            }
            out += indent + "}"
        default:
            throw EncodingError.invalidValue(
                value, .init(codingPath: [], debugDescription: "\(type(of: value)) is not a JSON value"))
        }
    }
}
