/// The GPT-2 pre-tokenizer split, written out as a scanner (no regex engine):
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`,
/// optionally after isolating every digit (`Digits(individual_digits)`, SmolLM's pre-tokenizer).
struct GPT2Split: Sendable {
    var isolateDigits: Bool

    /// The pieces of `text`, in order; their concatenation is `text`.
    func split(_ text: Substring) -> [Substring] {
        let scalars = Array(text.unicodeScalars)
        var pieces: [Substring] = []
        var fragmentStart = 0
        var indices: [String.Index] = []
        indices.reserveCapacity(scalars.count + 1)
        var idx = text.startIndex
        for _ in scalars { indices.append(idx); idx = text.unicodeScalars.index(after: idx) }
        indices.append(text.endIndex)
        func emit(_ lo: Int, _ hi: Int) { if lo < hi { pieces.append(text[indices[lo]..<indices[hi]]) } }
        // Digits split the text into fragments first; the pattern then runs inside each fragment.
        for i in 0...scalars.count {
            if i == scalars.count || (isolateDigits && Self.isNumber(scalars[i])) {
                scan(scalars, fragmentStart, i, emit)
                if i < scalars.count { emit(i, i + 1) }
                fragmentStart = i + 1
            }
        }
        return pieces
    }

    private func scan(_ s: [Unicode.Scalar], _ start: Int, _ end: Int, _ emit: (Int, Int) -> Void) {
        var i = start
        while i < end {
            let c = s[i]
            if c == "'", let n = Self.contraction(s, i + 1, end) {
                emit(i, i + 1 + n)
                i += 1 + n
                continue
            }
            // ` ?X+` for X in letters, numbers, other: an optional space, then a run of one class.
            let j = (c == " " && i + 1 < end) ? i + 1 : i
            let first = s[j]
            if !Self.isSpace(first) {
                let cls = Self.kind(first)
                var k = j + 1
                while k < end, !Self.isSpace(s[k]), Self.kind(s[k]) == cls { k += 1 }
                emit(i, k)
                i = k
                continue
            }
            // Whitespace: the run, minus its last character when a non-space follows.
            var k = i
            while k < end, Self.isSpace(s[k]) { k += 1 }
            if k < end, k - i > 1 { k -= 1 }
            emit(i, k)
            i = k
        }
    }

    /// Length of the contraction after an apostrophe at `i − 1`, if one starts at `i`.
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, _ end: Int) -> Int? {
        guard i < end else { return nil }
        if i + 1 < end {
            let two = String(String.UnicodeScalarView([s[i], s[i + 1]]))
            if two == "re" || two == "ve" || two == "ll" { return 2 }
        }
        return ["s", "t", "m", "d"].contains(s[i]) ? 1 : nil
    }

    private enum Kind { case letter, number, other }

    private static func kind(_ c: Unicode.Scalar) -> Kind {
        if c.isASCII {
            let v = c.value
            if (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) { return .letter }
            if (0x30...0x39).contains(v) { return .number }
            return .other
        }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    static func isNumber(_ c: Unicode.Scalar) -> Bool { kind(c) == .number }

    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        c.isASCII ? (c == " " || (0x09...0x0D).contains(c.value)) : c.properties.isWhitespace
    }
}
