/// Byte-level BPE pre-tokenizer splits, written out as scanners (no regex engine).
public enum SplitPattern: Sendable, Equatable {
    /// GPT-2 (and SmolLM after digit isolation):
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3

    /// The regex as tokenizer.json writes it.
    static let llama3Regex = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)"#, #"[^\r\n\p{L}\p{N}]?\p{L}+"#, #"\p{N}{1,3}"#, #" ?[^\s\p{L}\p{N}]+[\r\n]*"#,
        #"\s*[\r\n]+"#, #"\s+(?!\S)"#, #"\s+"#,
    ].joined(separator: "|")
}

/// Splits text into the pieces BPE merges within: a ``SplitPattern``, optionally after isolating
/// every digit (`Digits(individual_digits)`, SmolLM's pre-tokenizer).
struct PreTokenizer: Sendable {
    var pattern: SplitPattern = .gpt2
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
        if pattern == .llama3 { return scanLlama3(s, start, end, emit) }
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

    private func scanLlama3(_ s: [Unicode.Scalar], _ start: Int, _ end: Int, _ emit: (Int, Int) -> Void) {
        func isNewline(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }
        func run(_ from: Int, _ accept: (Unicode.Scalar) -> Bool) -> Int {
            var k = from
            while k < end, accept(s[k]) { k += 1 }
            return k
        }
        var i = start
        while i < end {
            let c = s[i]
            if c == "'", let n = Self.contraction(s, i + 1, end, caseInsensitive: true) {  // (?i:'s|…)
                emit(i, i + 1 + n)
                i += 1 + n
                continue
            }
            let kind = Self.isSpace(c) ? nil : Self.kind(c)
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if kind == .letter
                || (!isNewline(c) && kind != .number && kind != .letter && i + 1 < end
                    && !Self.isSpace(s[i + 1]) && Self.kind(s[i + 1]) == .letter)
            {
                let k = run(kind == .letter ? i : i + 1) { !Self.isSpace($0) && Self.kind($0) == .letter }
                emit(i, k)
                i = k
                continue
            }
            if kind == .number {  // \p{N}{1,3}
                let k = min(run(i) { !Self.isSpace($0) && Self.kind($0) == .number }, i + 3)
                emit(i, k)
                i = k
                continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let j = (c == " " && i + 1 < end) ? i + 1 : i
            if !Self.isSpace(s[j]), Self.kind(s[j]) == .other {
                let k = run(run(j) { !Self.isSpace($0) && Self.kind($0) == .other }, isNewline)
                emit(i, k)
                i = k
                continue
            }
            // Whitespace: up to and including the last newline of the run (\s*[\r\n]+), otherwise as GPT-2.
            let runEnd = run(i, Self.isSpace)
            if let lastNewline = (i..<runEnd).last(where: { isNewline(s[$0]) }) {
                emit(i, lastNewline + 1)
                i = lastNewline + 1
                continue
            }
            var k = runEnd
            if k < end, k - i > 1 { k -= 1 }
            emit(i, k)
            i = k
        }
    }

    /// Length of the contraction after an apostrophe at `i − 1`, if one starts at `i`.
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, _ end: Int, caseInsensitive: Bool = false) -> Int?
    {
        guard i < end else { return nil }
        func text(_ n: Int) -> String {
            let t = String(String.UnicodeScalarView(s[i..<i + n]))
            return caseInsensitive ? t.lowercased() : t
        }
        if i + 1 < end, ["re", "ve", "ll"].contains(text(2)) { return 2 }
        return ["s", "t", "m", "d"].contains(text(1)) ? 1 : nil
    }

    enum Kind { case letter, number, other }

    static func kind(_ c: Unicode.Scalar) -> Kind {
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
