import ArgumentParser
import Datasets
import Foundation
import Formats
import Training

struct InspectData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-data",
        abstract: "Show how a configuration's training data is tokenized and masked, with a length histogram.",
        discussion: """
            Each sample is printed as the model sees it: masked (prompt) text as is, trained text between « and ». \
            Then the number of examples, tokens and trained tokens, and a histogram of example lengths in tokens.
            """)

    @Argument(help: "YAML configuration file.")
    var config: String
    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var sets: [String] = []
    @Option(help: "Samples to show.")
    var samples = 3

    func run() throws {
        let s: RunSettings, data: RunData, options: TrainingOptions
        let settings = try RunConfig.load(config, overrides: sets)
        (s, options) = (try settings.sections(), try settings.trainingOptions())
        data = try RunData(s.data)
        for line in data.skipReport { print(line) }
        let loaded = try ModelFile.load(
            try RunSettings.required(s.model.path, "model.path"), tokenizer: s.model.tokenizer)
        let encoder = data.encoder(for: loaded), tok = loaded.tokenizer
        let examples = try data.train.map { try encoder.encode($0.record) }
        for (i, e) in examples.prefix(samples).enumerated() {
            print(
                """
                ── sample \(i + 1) (\(data.trainPath):\(data.train[i].line)): \(e.ids.count) tokens, \
                \(e.trained.filter { $0 }.count) trained
                """
            )
            print(Self.render(e, tok))
        }
        let lengths = examples.map(\.ids.count), trained = examples.map { $0.trained.filter { $0 }.count }.reduce(0, +)
        print(
            """
            \n\(examples.count) examples, \(lengths.reduce(0, +)) tokens, \(trained) trained; lengths \
            \(lengths.min()!)–\(lengths.max()!), mean \(lengths.reduce(0, +) / lengths.count)
            """
        )
        let tooLong = lengths.filter { $0 - 1 > options.maxLength }.count
        if tooLong > 0 {
            print(
                """
                warning: \(tooLong) examples are longer than train.seq + 1 = \(options.maxLength + 1) tokens; training \
                refuses them
                """
            )
        }
        if options.packing {
            let rows = Batcher.packRows(lengths.map { min($0, options.maxLength + 1) }, maxLength: options.maxLength)
                .count
            print("packing: \(rows) sequences of ≤ \(options.maxLength) positions (\(examples.count) unpacked)")
        }
        if let warning = encoder.stopTokenWarning(examples) { print("warning: \(warning)") }
        print(Self.histogram(lengths))
    }

    /// The example's text with trained spans between « and ».
    static func render(_ e: TokenizedExample, _ tok: any Tokenizer) -> String {
        var out = "", previous: Int32? = nil, inTrained = false
        for (id, trained) in zip(e.ids, e.trained) {
            if trained != inTrained { out += trained ? "«" : "»" }
            inTrained = trained
            out += String(decoding: tok.decode(id, after: previous), as: UTF8.self)
            previous = id
        }
        return inTrained ? out + "»" : out
    }

    /// Ten equal-width bins of token counts, drawn with bars.
    static func histogram(_ lengths: [Int]) -> String {
        let lo = lengths.min()!, hi = lengths.max()!, bins = 10, width = max(1, (hi - lo + bins) / bins)
        var counts = [Int](repeating: 0, count: bins)
        for n in lengths { counts[min(bins - 1, (n - lo) / width)] += 1 }
        let top = counts.max()!
        return "tokens per example:\n"
            + counts.enumerated().map { i, c in
                String(format: "%6d–%-6d %6d ", lo + i * width, lo + (i + 1) * width - 1, c)
                    + String(repeating: "█", count: c * 40 / max(1, top))
            }.joined(separator: "\n")
    }
}
