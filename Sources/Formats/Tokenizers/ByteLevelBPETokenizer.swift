import Synchronization

/// Byte-level BPE (GPT-2, Llama 3, SmolLM): text is split into pieces (special tokens, then the
/// GPT-2 pattern), each piece's UTF-8 bytes are written as GPT-2's printable "byte characters", and
/// merges are applied lowest rank first.
public final class ByteLevelBPETokenizer: Tokenizer, @unchecked Sendable {
    public let tokens: [String]
    public let vocabularySize: Int
    public let bos: Int32?
    public let stopTokens: Set<Int32>
    /// Tokens matched verbatim in text before splitting (control and user-defined tokens).
    public var specialTokens: [String: Int32] { specials.ids }
    private let specials: SpecialTokens
    /// "left right" pairs, best first (kept for export).
    public var merges: [String] { mergeTable.list }
    /// Whether every digit is its own piece before the split (SmolLM).
    public var isolatesDigits: Bool { split.isolateDigits }
    /// The split the pre-tokenizer applies.
    var splitPattern: SplitPattern { split.pattern }
    private let mergeTable: BPEMerges
    /// The token of each byte; nil for bytes the vocabulary lacks (never seen in training, e.g. 0xFF),
    /// which are dropped as Hugging Face's BPE without an unknown token drops them.
    private let byteIDs: [Int32?]
    private let split: PreTokenizer
    /// Encodings of pieces seen before (`@unchecked Sendable`: only touched under this lock).
    private let cache = Mutex<[Substring: [Int32]]>([:])
    private static let cacheLimit = 100_000

    /// - Parameters:
    ///   - merges: "left right" pairs, best first.
    ///   - special: ids to match verbatim in text and to decode as their text.
    public init(
        tokens: [String], merges: [String], special: Set<Int32>, bos: Int32?, stop: Set<Int32>,
        split pattern: SplitPattern = .gpt2, isolateDigits: Bool, file: String
    ) throws {
        self.tokens = tokens
        vocabularySize = tokens.count
        self.bos = bos
        stopTokens = stop
        var ids: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        mergeTable = try BPEMerges(merges, ids: ids, file: file)
        byteIDs = (0..<256).map { ids[String(ByteLevel.character(UInt8($0)))] }
        guard byteIDs.filter({ $0 != nil }).count >= 128 else {
            throw FormatError(
                file: file, problem: "fewer than half of the 256 byte characters are tokens",
                fix: "This is not a byte-level BPE vocabulary.")
        }
        specials = SpecialTokens(Dictionary(special.map { (tokens[Int($0)], $0) }, uniquingKeysWith: { a, _ in a }))
        split = PreTokenizer(pattern: pattern, isolateDigits: isolateDigits)
    }

    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        specials.split(
            text,
            text: { segment in
                for piece in split.split(segment[...]) { out += encodePiece(piece) }
            }, special: { out.append($0) })
        return out
    }

    private func encodePiece(_ piece: Substring) -> [Int32] {
        if let hit = cache.withLock({ $0[piece] }) { return hit }
        var symbols = piece.utf8.compactMap { byteIDs[Int($0)] }
        mergeTable.apply(&symbols)
        cache.withLock { c in
            if c.count >= Self.cacheLimit { c.removeAll(keepingCapacity: true) }  // bounded memory on large corpora
            c[piece] = symbols
        }
        return symbols
    }

    public func decode(_ id: Int32, after previous: Int32?) -> [UInt8] {
        let token = tokens[Int(id)]
        if specialTokens[token] == id { return Array(token.utf8) }
        return token.unicodeScalars.compactMap { ByteLevel.byte($0) }
    }
}

/// GPT-2's reversible map between bytes and printable characters: printable Latin-1 bytes stand
/// for themselves, the others for U+0100 onwards in byte order.
enum ByteLevel {
    private static let table: [Unicode.Scalar] = {
        var printable = Array(33...126) + Array(161...172) + Array(174...255)
        var scalars = [Unicode.Scalar](repeating: " ", count: 256)
        for b in printable { scalars[b] = Unicode.Scalar(UInt8(b)) }
        var next: UInt32 = 256
        for b in 0..<256 where !printable.contains(b) {
            scalars[b] = Unicode.Scalar(next)!
            next += 1
            printable.append(b)
        }
        return scalars
    }()
    private static let inverse: [UInt32: UInt8] = Dictionary(
        uniqueKeysWithValues: table.enumerated().map { ($1.value, UInt8($0)) })

    static func character(_ b: UInt8) -> Character { Character(table[Int(b)]) }
    static func byte(_ c: Unicode.Scalar) -> UInt8? { inverse[c.value] }
}
