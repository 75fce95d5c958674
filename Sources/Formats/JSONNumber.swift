import Foundation

/// Numbers as JSONSerialization returns them: `true` and `false` come back as numbers that cast to 1 and 0, and
/// `2.5` as one that casts to 2. These tell them apart, so that a boolean or a fraction where an integer belongs is
/// refused rather than read as one.
public enum JSONNumber {
    /// Whether `value` was a JSON `true` or `false`.
    public static func isBoolean(_ value: Any?) -> Bool {
        guard let n = value as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    /// `value` as an integer: a JSON number with no fractional part, within Int; nil for anything else.
    public static func integer(_ value: Any?) -> Int? {
        guard let n = value as? NSNumber, !isBoolean(n) else { return nil }
        if let exact = Int(exactly: n.int64Value), n.doubleValue == Double(exact) { return exact }
        return Int(exactly: n.doubleValue)
    }
}
