/// SplitMix64: a tiny seeded generator, so that a fuzz run is reproduced from its printed seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations of a valid input of the kinds that break loaders: truncation, bit flips, boundary integers written
/// over header fields, deleted and duplicated ranges, and for text formats numbers replaced by extreme ones, deep
/// nesting, invalid UTF-8 and very long lines. One to four mutations are stacked per mutant.
struct Mutator {
    var rng: SplitMix64
    /// Positional mutations land in `0 ..< hot` four times in five (a binary format's header), elsewhere otherwise.
    let hot: Int
    let text: Bool

    static let integers: [UInt64] = [
        0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
        1 << 32, 1 << 40, 1 << 62, UInt64(Int64.max), 1 << 63, UInt64.max, UInt64.max - 1,
    ]
    static let numbers = [
        "-1", "0", "1", "-2147483649", "2147483648", "4294967296", "9223372036854775807",
        "-9223372036854775808", "18446744073709551616", "99999999999999999999999999", "1e400", "-1e400",
        "NaN", "0.5", "1e-400", "65536",
    ]
    static let snippets = [
        "\"", ":", ",", "{", "}", "[", "]", "null", "true", "\"\"", "[]", "{}", "\\", "\\u0000", "\\ud800",
        "\t", "\n", "&a", "*a", "- ", "? ", "!!binary", "%", "'", "<<: *a", "\u{2581}", "<|im_start|>",
    ]

    init(seed: UInt64, hot: Int, text: Bool) {
        rng = SplitMix64(seed: seed)
        self.hot = hot
        self.text = text
    }

    mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) { apply(&bytes) }
        return bytes
    }

    private mutating func position(_ count: Int) -> Int {
        guard count > 0 else { return 0 }
        return Int.random(in: 0..<5, using: &rng) < 4
            ? Int.random(in: 0..<min(count, max(hot, 1)), using: &rng)
            : Int.random(in: 0..<count, using: &rng)
    }

    private mutating func apply(_ b: inout [UInt8]) {
        let kinds = text ? 12 : 7
        switch Int.random(in: 0..<kinds, using: &rng) {
        case 0:  // truncate
            b.removeLast(b.isEmpty ? 0 : Int.random(in: 0...b.count, using: &rng))
        case 1:  // flip a bit
            guard !b.isEmpty else { return }
            b[position(b.count)] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
        case 2:  // a boundary byte
            guard !b.isEmpty else { return }
            b[position(b.count)] = [0, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(
                using: &rng)!
        case 3:  // a boundary integer of 2, 4 or 8 bytes, little-endian
            let width = [2, 4, 8].randomElement(using: &rng)!
            guard b.count >= width else { return }
            let at = min(position(b.count), b.count - width)
            var v = Self.integers.randomElement(using: &rng)!
            if Bool.random(using: &rng) { v = v &+ UInt64(b.count) }
            for k in 0..<width { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        case 4:  // delete a range
            guard !b.isEmpty else { return }
            let at = position(b.count), n = Int.random(in: 1...min(64, b.count - at), using: &rng)
            b.removeSubrange(at..<at + n)
        case 5:  // duplicate a range elsewhere
            guard !b.isEmpty else { return }
            let at = position(b.count), n = Int.random(in: 1...min(256, b.count - at), using: &rng)
            b.insert(contentsOf: b[at..<at + n], at: position(b.count))
        case 6:  // copy a range over another (e.g. one header field onto another)
            guard b.count > 1 else { return }
            let from = position(b.count), to = position(b.count),
                n = min(Int.random(in: 1...16, using: &rng), b.count - max(from, to))
            b.replaceSubrange(to..<to + n, with: b[from..<from + n])
        case 7:  // a number replaced by an extreme one
            let digits = b.indices.filter {
                b[$0] >= 0x30 && b[$0] <= 0x39 && ($0 == 0 || !(b[$0 - 1] >= 0x30 && b[$0 - 1] <= 0x39))
            }
            guard let start = digits.randomElement(using: &rng) else { return }
            var end = start
            while end < b.count, (b[end] >= 0x30 && b[end] <= 0x39) || b[end] == 0x2E { end += 1 }
            b.replaceSubrange(start..<end, with: Array(Self.numbers.randomElement(using: &rng)!.utf8))
        case 8:  // deep nesting
            let n = [10, 100, 1000, 20000].randomElement(using: &rng)!,
                open = Bool.random(using: &rng) ? "[" : "{\"a\":"
            let close = open == "[" ? "]" : "}"
            let closed = Bool.random(using: &rng)
            let nested = String(repeating: open, count: n) + (closed ? "1" + String(repeating: close, count: n) : "")
            b.insert(contentsOf: Array(nested.utf8), at: position(b.count + 1))
        case 9:  // invalid UTF-8
            b.insert(
                contentsOf: [[0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]
                    .randomElement(using: &rng)!,
                at: position(b.count + 1))
        case 10:  // a very long line: a chunk repeated
            guard !b.isEmpty else { return }
            let at = position(b.count), n = min(Int.random(in: 1...32, using: &rng), b.count - at)
            let chunk = b[at..<at + n].filter { $0 != 0x0A }
            b.insert(
                contentsOf: Array(repeating: chunk, count: [100, 2000, 20000].randomElement(using: &rng)!).joined(),
                at: at)
        default:  // a structural snippet
            b.insert(contentsOf: Array(Self.snippets.randomElement(using: &rng)!.utf8), at: position(b.count + 1))
        }
    }
}
