/// Text ↔ token ids.
public protocol Tokenizer: Sendable {
    var vocabularySize: Int { get }
    /// Beginning-of-sequence id, if the vocabulary has one.
    var bos: Int32? { get }
    /// Ids that end generation.
    var stopTokens: Set<Int32> { get }
    /// Ids of `text`, without BOS.
    func encode(_ text: String) -> [Int32]
    /// Ids of `text` when it continues text already encoded: SentencePiece tokenizers leave out their
    /// dummy-prefix space, so encoding a conversation piece by piece gives the same ids as encoding it whole.
    func encodeContinuation(_ text: String) -> [Int32]
    /// The bytes `id` contributes to the text when it follows `previous`.
    func decode(_ id: Int32, after previous: Int32?) -> [UInt8]
}

extension Tokenizer {
    public func encodeContinuation(_ text: String) -> [Int32] { encode(text) }

    /// The text of `ids` when they follow `previous` (e.g. BOS, which is not part of the text);
    /// invalid UTF-8 is repaired.
    public func decode(_ ids: [Int32], after previous: Int32? = nil) -> String {
        var bytes: [UInt8] = []
        var previous = previous
        for id in ids {
            bytes += decode(id, after: previous)
            previous = id
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
