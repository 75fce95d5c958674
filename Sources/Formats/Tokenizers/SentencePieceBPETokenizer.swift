import Foundation

/// SentencePiece-style BPE as Hugging Face writes it for Llama 2 and TinyLlama: the normalizer
/// prepends "▁" and replaces every space with "▁", there is no pre-tokenizer (merges never cross a
/// "▁" because none exist), characters missing from the vocabulary fall back to `<0xHH>` byte tokens,
/// and decoding turns "▁" back into spaces, fuses byte tokens and drops the leading space.
public final class SentencePieceBPETokenizer: Tokenizer, @unchecked Sendable {
    public let tokens: [String]
    public var vocabularySize: Int { tokens.count }
    public let bos: Int32?
    public let stopTokens: Set<Int32>
    /// Whether "▁" is prepended to each text segment (the `Prepend` normalizer).
    public let prependsSpace: Bool
    private let ids: [String: Int32]
    private let merges: BPEMerges
    /// "left right" pairs, best first (kept for export).
    public var mergeList: [String] { merges.list }
    /// Tokens matched verbatim in text.
    public var specialTokens: [String: Int32] { specials.ids }
    private let specials: SpecialTokens
    /// The `<0xHH>` token of each byte, and the byte of each such token.
    private let byteTokens: [Int32]
    private let byteOf: [Int32: UInt8]

    public init(
        tokens: [String], merges: [String], special: Set<Int32>, bos: Int32?, stop: Set<Int32>,
        prependsSpace: Bool, file: String
    ) throws {
        self.tokens = tokens
        self.bos = bos
        stopTokens = stop
        self.prependsSpace = prependsSpace
        var ids: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        self.ids = ids
        self.merges = try BPEMerges(merges, ids: ids, file: file)
        specials = SpecialTokens(Dictionary(special.map { (tokens[Int($0)], $0) }, uniquingKeysWith: { a, _ in a }))
        byteTokens = try (0..<256).map { b in
            guard let id = ids[Self.byteToken(UInt8(b))] else {
                throw FormatError(
                    file: file,
                    problem: "byte_fallback is set but \(Self.byteToken(UInt8(b))) is not in the vocabulary",
                    fix: "The tokenizer is corrupted.")
            }
            return id
        }
        byteOf = Dictionary(uniqueKeysWithValues: byteTokens.enumerated().map { ($1, UInt8($0)) })
    }

    static func byteToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    public func encode(_ text: String) -> [Int32] { encode(text, prefix: prependsSpace) }

    public func encodeContinuation(_ text: String) -> [Int32] { encode(text, prefix: false) }

    /// `prefix` applies to the first text segment; later segments (after special tokens) always get it, as the
    /// normalizer runs on each segment.
    private func encode(_ text: String, prefix: Bool) -> [Int32] {
        var out: [Int32] = [], first = true
        specials.split(
            text,
            text: { segment in
                let normalized = ((prefix || !first) && prependsSpace ? "▁" : "") + segment.replacingSpaces()
                first = false
                var symbols: [Int32] = []
                for scalar in normalized.unicodeScalars {
                    if let id = ids[String(scalar)] {
                        symbols.append(id)
                    } else {
                        symbols += String(scalar).utf8.map { byteTokens[Int($0)] }
                    }
                }
                merges.apply(&symbols)
                out += symbols
            },
            special: {
                out.append($0)
                first = false
            })
        return out
    }

    public func decode(_ id: Int32, after previous: Int32?) -> [UInt8] {
        let token = tokens[Int(id)]
        if let b = byteOf[id] { return [b] }
        var bytes = Array(token.replacingOccurrences(of: "▁", with: " ").utf8)
        // Strip(left: 1): the first character of the text (BOS is not text), when it is the space the normalizer added.
        if previous == nil || (previous == bos && bos != nil), prependsSpace, bytes.first == 0x20 {
            bytes.removeFirst()
        }
        return bytes
    }
}

private extension String {
    func replacingSpaces() -> String { replacingOccurrences(of: " ", with: "▁") }
}
