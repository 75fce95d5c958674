/// A SentencePiece vocabulary merged by score, as llama2.c's run.c and llama.cpp's SPM tokenizer do:
/// a dummy-prefix space, each character looked up (or its UTF-8 bytes as `<0xHH>` pieces), then
/// repeatedly the adjacent pair whose concatenation has the best score. Pieces hold real spaces (a
/// GGUF vocabulary's "▁" is turned into " "). Read from llama2.c `tokenizer.bin` or GGUF `llama` metadata.
public struct ScoredPieceTokenizer: Tokenizer {
    public let pieces: [[UInt8]]
    public let scores: [Float]
    public let bos: Int32?
    public let stopTokens: Set<Int32>
    /// Whether a space is put before each text segment (SentencePiece's dummy prefix).
    public let addsSpacePrefix: Bool
    private let ids: [[UInt8]: Int32]
    /// The piece two adjacent tokens merge into, keyed by `left << 32 | right`: every pair of ids whose
    /// pieces concatenate to a vocabulary piece (the lookup run.c does by string concatenation).
    private let merges: [UInt64: Int32]
    /// The `<0xHH>` piece of each byte (llama2.c: ids 3…258).
    private let byteIDs: [Int32]
    private let specials: SpecialTokens
    /// Tokens matched verbatim in text.
    public var specialTokens: [String: Int32] { specials.ids }

    public var vocabularySize: Int { pieces.count }

    /// - Parameter special: ids matched verbatim in text (control tokens of a GGUF vocabulary).
    init(
        pieces: [[UInt8]], scores: [Float], bos: Int32?, stop: Set<Int32>, special: Set<Int32>, addsSpacePrefix: Bool,
        file: String
    ) throws {
        self.pieces = pieces
        self.scores = scores
        self.bos = bos
        stopTokens = stop
        self.addsSpacePrefix = addsSpacePrefix
        var ids: [[UInt8]: Int32] = [:]
        for (i, p) in pieces.enumerated() where ids[p] == nil { ids[p] = Int32(i) }
        self.ids = ids
        let idsOfPiece = Dictionary(grouping: pieces.indices, by: { pieces[$0] })
        var merges: [UInt64: Int32] = [:]
        for (piece, merged) in ids where piece.count > 1 {
            for cut in 1..<piece.count {
                guard let lefts = idsOfPiece[Array(piece[..<cut])], let rights = idsOfPiece[Array(piece[cut...])] else {
                    continue
                }
                for l in lefts { for r in rights { merges[Self.pairKey(Int32(l), Int32(r))] = merged } }
            }
        }
        self.merges = merges
        byteIDs = try (0..<256).map { b in
            let hex = String(b, radix: 16, uppercase: true)
            guard let id = ids[Array(("<0x" + (hex.count == 1 ? "0" : "") + hex + ">").utf8)] else {
                throw FormatError(
                    file: file, problem: "the vocabulary has no byte piece for \(b)",
                    fix: "This is not a SentencePiece vocabulary with byte fallback.")
            }
            return id
        }
        specials = SpecialTokens(
            Dictionary(
                special.map { (String(decoding: pieces[Int($0)], as: UTF8.self), $0) }, uniquingKeysWith: { a, _ in a })
        )
    }

    /// llama2.c's `tokenizer.bin`: `int32 max_token_length`, then per token `float32 score, int32 len,
    /// len bytes`, vocab-size times (the count comes from the model, and the file must hold exactly that
    /// many). Ids 3…258 are the byte pieces; run.c ends generation at BOS (id 1), which starts the next story.
    public static func llama2c(path: String, vocabularySize: Int) throws -> ScoredPieceTokenizer {
        guard vocabularySize > 2 else {  // ids 0, 1, 2 are <unk>, <s> (BOS) and </s>
            throw FormatError(
                file: path,
                problem:
                    """
                    the model's vocabulary has \(vocabularySize) tokens; a llama2.c vocabulary has at least <unk>, <s> \
                    and </s>
                    """,
                fix: "The checkpoint's header is corrupted.")
        }
        var r = try BinaryReader(path: path)
        let maxLength = Int(try r.int32("max_token_length"))
        var pieces: [[UInt8]] = [], scores: [Float] = []
        pieces.reserveCapacity(vocabularySize)
        for i in 0..<vocabularySize {
            if r.remaining == 0 {
                throw FormatError(
                    file: path,
                    problem: "the tokenizer holds \(i) tokens but the model's vocabulary has \(vocabularySize)",
                    fix: "Use the tokenizer.bin that was exported with this model.")
            }
            scores.append(try r.float32("score of token \(i)"))
            let n = Int(try r.int32("length of token \(i)"))
            guard n >= 0 && n <= max(maxLength, 64) else {
                throw FormatError(
                    file: path, problem: "token \(i) claims length \(n) (max_token_length \(maxLength))",
                    fix: "The file is corrupted or not a llama2.c tokenizer.")
            }
            pieces.append(Array(try r.bytes(n, "bytes of token \(i)")))
        }
        if r.remaining > 0 {
            throw FormatError(
                file: path,
                problem:
                    """
                    \(r.remaining) bytes remain after the model's \(vocabularySize) tokens: the tokenizer is larger \
                    than the model's vocabulary
                    """,
                fix: "Use the tokenizer.bin that was exported with this model.")
        }
        return try ScoredPieceTokenizer(
            pieces: pieces, scores: scores, bos: 1, stop: [1], special: [], addsSpacePrefix: true, file: path)
    }

    public func encode(_ text: String) -> [Int32] { encode(text, prefix: addsSpacePrefix) }

    public func encodeContinuation(_ text: String) -> [Int32] { encode(text, prefix: false) }

    private func encode(_ text: String, prefix: Bool) -> [Int32] {
        var out: [Int32] = [], first = true
        specials.split(
            text,
            text: {
                out += encodeSegment($0, prefix: prefix || !first)
                first = false
            },
            special: {
                out.append($0)
                first = false
            })
        return out
    }

    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    private func encodeSegment(_ text: String, prefix: Bool) -> [Int32] {
        var tokens: [Int32] = []
        if prefix && addsSpacePrefix, let space = ids[[0x20]] { tokens.append(space) }
        for scalar in text.unicodeScalars {
            let utf8 = Array(scalar.utf8)
            if let id = ids[utf8] {
                tokens.append(id)
            } else {
                tokens += utf8.map { byteIDs[Int($0)] }
            }
        }
        // Merge the adjacent pair with the best score (the first such pair on ties) until no pair is in the vocabulary.
        PairMerge.apply(&tokens) { a, b in merges[Self.pairKey(a, b)].map { (-Double(scores[Int($0)]), $0) } }
        return tokens
    }

    public func decode(_ id: Int32, after previous: Int32?) -> [UInt8] {
        var piece = pieces[Int(id)][...]
        if previous != nil, previous == bos, piece.first == 0x20 { piece = piece.dropFirst() }
        if let byte = Self.byteFallback(piece) { piece = [byte][...] }
        // As run.c's safe_printf, a lone ASCII control byte (not whitespace) is dropped; unlike
        // run.c, bytes ≥ 0x80 are kept, so characters split into byte-fallback pieces survive.
        if piece.count == 1, let b = piece.first, b < 0x20 || b == 0x7F, !(0x09...0x0D).contains(b) {
            return []
        }
        return Array(piece)
    }

    /// The byte of a `<0xHH>` piece.
    private static func byteFallback(_ piece: ArraySlice<UInt8>) -> UInt8? {
        guard piece.count == 6, piece.starts(with: Array("<0x".utf8)), piece.last == UInt8(ascii: ">") else {
            return nil
        }
        return UInt8(String(decoding: piece.dropFirst(3).prefix(2), as: UTF8.self), radix: 16)
    }

    /// The BPE merges equivalent to merging by score, best first: every split of a piece into two
    /// pieces, ordered by the merged piece's score (as transformers converts SentencePiece models).
    func derivedMerges() -> [(left: [UInt8], right: [UInt8])] {
        var candidates: [(score: Float, id: Int, left: [UInt8], right: [UInt8])] = []
        for (id, piece) in pieces.enumerated() where piece.count > 1 && !byteIDs.contains(Int32(id)) {
            // Splits at character (not byte) boundaries.
            let scalars = Array(String(decoding: piece, as: UTF8.self).unicodeScalars)
            for cut in 1..<scalars.count {
                let left = Array(String(String.UnicodeScalarView(scalars[..<cut])).utf8)
                let right = Array(String(String.UnicodeScalarView(scalars[cut...])).utf8)
                if ids[left] != nil, ids[right] != nil { candidates.append((scores[id], id, left, right)) }
            }
        }
        return candidates.sorted { ($0.score, -$0.id) > ($1.score, -$1.id) }.map { ($0.left, $0.right) }
    }
}
