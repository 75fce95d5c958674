import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore

extension Bench {
    struct TokenizerSpeed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tokenizer", abstract: "Encoding speed of a model's tokenizer on a text file, one thread.")
        @OptionGroup var source: ModelOptions
        @Option(help: "Text file to encode (split into lines, as a data pipeline would).")
        var data: String
        @Option(help: "Timed repetitions.")
        var repetitions = 5

        func run() throws {
            let tok = try source.load(ledger: MemoryLedger()).tokenizer
            guard let bytes = FileManager.default.contents(atPath: data) else {
                throw ValidationError("\(data): cannot read")
            }
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
            var times: [Double] = [], tokens = 0
            for _ in 0..<repetitions {
                let t0 = monotonicNanoseconds()
                tokens = lines.reduce(0) { $0 + tok.encode($1).count }
                times.append(Double(monotonicNanoseconds() - t0) * 1e-9)
            }
            let median = times.sorted()[times.count / 2]
            print(
                String(
                    format:
                        """
                        %@: %.2f MB in %d lines, %d tokens; median %.3f s (first run %.3f s, cold cache) = %.2f MB/s, \
                        %.0f k tokens/s
                        """,
                    data, Double(bytes.count) / 1e6, lines.count, tokens, median, times[0],
                    Double(bytes.count) / median / 1e6, Double(tokens) / median / 1e3))
        }
    }
}
