import ArgumentParser
import Foundation
import Formats
import Llama
import Methods
import TensorCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, parameters per group, tokenizer, chat template, memory to load.")

    @Argument(help: "A Hugging Face directory, a GGUF file or a llama2.c .bin.")
    var model: String
    @Option(help: "Tokenizer file (llama2.c only).")
    var tokenizer: String?

    func run() throws {
        let ledger = MemoryLedger()
        let start = monotonicNanoseconds()
        let loaded = try ModelFile.load(model, tokenizer: tokenizer, ledger: ledger)
        let seconds = Double(monotonicNanoseconds() - start) * 1e-9
        let c = loaded.model.config, layout = loaded.model.layout
        print("model: \(model)")
        print(
            """
            architecture: \(HFConfig.architecture(c).name), \(c.layerCount) layers, dim \(c.dim), ffn \(c.ffnDim), \
            \(c.headCount) heads / \(c.kvHeadCount) kv heads (head dim \(c.headDim)), vocab \(c.vocabSize), \
            context \(c.maxSequenceLength)
            """
        )
        print(
            """
            rope: theta \(c.ropeTheta), \(c.ropeLayout.rawValue)\(c.ropeScaling.map { ", scaling \($0)" } ?? ""); norm \
            eps \(c.normEpsilon); embeddings \(c.tiedEmbeddings ? "tied" : "untied")
            """
        )
        // by optimizer group: biases with attention, every norm (q/k and output norms too) with the norms
        let groups = ParameterGroup.allCases.filter { c.tiedEmbeddings ? $0 != .head : true }.map { group in
            (
                group == .head ? "lm head" : group.rawValue,
                layout.parameters.filter { ParameterGroup($0.role) == group }.reduce(0) { $0 + $1.count }
            )
        }
        let total = layout.parameterCount
        print(String(format: "parameters: %.2f M", Double(total) / 1e6))
        for (name, n) in groups {
            print(
                "  " + name.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(format: "%12d  (%.1f%%)", n, 100 * Double(n) / Double(total)))
        }
        print("source: \(loaded.source)")
        print(
            """
            in memory: fp32, \(PassBenchmark.format(bytes: total * 4)) of weights (quantized and 16-bit sources are \
            dequantized on load)
            """
        )
        print(
            """
            tokenizer: \(type(of: loaded.tokenizer)), \(loaded.tokenizer.vocabularySize) tokens, BOS \
            \(loaded.tokenizer.bos.map(String.init) ?? "none"), stop \(loaded.tokenizer.stopTokens.sorted())
            """
        )
        print(
            """
            chat template: \
            \(loaded.chatTemplate.map { "\($0)" } ?? (loaded.chatTemplateSource == nil ? "none" : "unrecognised"))
            """
        )
        print(
            String(
                format: "loaded in %.2f s; ledger %@, process peak RSS %@", seconds,
                PassBenchmark.format(bytes: ledger.snapshot().peakTotal),
                PassBenchmark.format(bytes: ProcessMemory.peakResidentBytes)))
    }
}
