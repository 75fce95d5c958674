/// Tokens matched verbatim in text before any other processing (control and added tokens). Matching
/// works on UTF-8 bytes; a table of their first bytes makes most positions a single lookup.
struct SpecialTokens: Sendable {
    /// Text → id.
    let ids: [String: Int32]
    private let byLength: [([UInt8], Int32)]
    private let firstBytes: [Bool]

    init(_ ids: [String: Int32]) {
        self.ids = ids
        byLength = ids.map { (Array($0.key.utf8), $0.value) }.filter { !$0.0.isEmpty }.sorted {
            $0.0.count > $1.0.count
        }
        var first = [Bool](repeating: false, count: 256)
        for (s, _) in byLength { first[Int(s[0])] = true }
        firstBytes = first
    }

    /// Calls `text(segment)` for the text between special tokens and `special(id)` for each one, in order
    /// (the longest special token wins where several start at one position).
    func split(_ text: String, text emitText: (String) -> Void, special: (Int32) -> Void) {
        let bytes = Array(text.utf8), n = bytes.count
        var segmentStart = 0, i = 0
        func flush(_ end: Int) {
            if segmentStart < end { emitText(String(decoding: bytes[segmentStart..<end], as: UTF8.self)) }
        }
        scan: while i < n {
            if firstBytes[Int(bytes[i])] {
                for (s, id) in byLength where i + s.count <= n && bytes[i..<i + s.count].elementsEqual(s) {
                    flush(i)
                    special(id)
                    i += s.count
                    segmentStart = i
                    continue scan
                }
            }
            i += 1
        }
        flush(n)
    }
}
