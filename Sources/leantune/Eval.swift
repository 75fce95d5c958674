import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss and perplexity of a model on a text or JSONL file.",
        discussion: """
            A .jsonl file holds one JSON object per line with a "text" field; any other file is plain text, \
            split into documents at <|endoftext|>. Each document is tokenized (with BOS when the tokenizer \
            adds one) and scored in windows of at most --seq tokens.
            """)

    @OptionGroup var source: ModelOptions
    @Option(help: "Text or JSONL file.")
    var data: String
    @Option(help: "Tokens per scored window.")
    var seq = 512
    @Option(help: "Threads for GEMM and kernels.")
    var threads = 2

    func validate() throws {
        guard seq >= 1 else { throw ValidationError("--seq must be at least 1 (tokens per scored window)") }
        try validateThreads(threads)
    }

    func run() throws {
        GEMM.setThreads(threads)
        let start = monotonicNanoseconds()
        let loaded = try source.load()
        let loadSeconds = Double(monotonicNanoseconds() - start) * 1e-9
        let m = loaded.model, tok = loaded.tokenizer
        let window = min(seq, m.config.maxSequenceLength)
        var total = LossResult(sum: 0, count: 0)
        for document in try Self.documents(data) {
            let ids = (tok.bos.map { [$0] } ?? []) + tok.encode(document)
            var i = 0
            while i + 1 < ids.count {
                let end = min(ids.count, i + window + 1)
                let r = try m.loss(TokenBatch(sequences: [Array(ids[i..<end])]))
                total.sum += r.sum
                total.count += r.count
                i = end - 1
            }
        }
        guard total.count > 0 else { throw ValidationError("\(data): no tokens to score") }
        print(
            String(
                format: "%@: %d tokens scored; loss %.4f nats/token, perplexity %.3f (model loaded in %.2f s)",
                data, total.count, total.mean, Foundation.exp(total.mean), loadSeconds))
    }

    /// The documents of a text or JSONL file; errors name the file and line.
    static func documents(_ path: String) throws -> [String] {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ValidationError("\(path): cannot read the file; check the path")
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard path.hasSuffix(".jsonl") else {
            return text.components(separatedBy: "<|endoftext|>").filter { !$0.allSatisfy(\.isWhitespace) }
        }
        var docs: [String] = []
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw ValidationError("\(path):\(n + 1): not a JSON object")
            }
            guard let t = object["text"] as? String else {
                throw ValidationError("\(path):\(n + 1): no \"text\" string field (fields: \(object.keys.sorted()))")
            }
            docs.append(t)
        }
        return docs
    }
}
