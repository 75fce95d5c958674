/// A ranked merge table over token ids: BPE's core, shared by the byte-level and SentencePiece-style
/// tokenizers.
struct BPEMerges: Sendable {
    /// "left right" pairs, best first.
    let list: [String]
    /// (left id, right id) → (rank, merged id)
    private let table: [UInt64: (rank: Int32, id: Int32)]

    init(_ merges: [String], ids: [String: Int32], file: String) throws {
        var table: [UInt64: (Int32, Int32)] = [:]
        for (rank, m) in merges.enumerated() {
            let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = ids[String(parts[0])], let b = ids[String(parts[1])],
                let merged = ids[String(parts[0]) + String(parts[1])]
            else {
                throw FormatError(
                    file: file, problem: "merge \(rank) '\(m)' names tokens that are not in the vocabulary",
                    fix: "The tokenizer is corrupted.")
            }
            if table[Self.key(a, b)] == nil { table[Self.key(a, b)] = (Int32(rank), merged) }
        }
        list = merges
        self.table = table
    }

    private static func key(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Merges the adjacent pair of lowest rank (leftmost on ties) until no pair has a merge.
    func apply(_ symbols: inout [Int32]) {
        PairMerge.apply(&symbols) { a, b in table[Self.key(a, b)].map { (Double($0.rank), $0.id) } }
    }
}
