import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a model with a KV cache (greedy at temperature 0).")

    @OptionGroup var source: ModelOptions
    @Option(help: "Text to continue (echoed before the continuation), or with --chat the user's message.")
    var prompt = ""
    @Flag(help: "Treat --prompt as a user message in the model's chat template and print only the reply.")
    var chat = false
    @Option(
        help:
            """
            With --chat: use this built-in template instead of the model's \
            (\(ChatTemplate.supportedNames.joined(separator: ", "))).
            """
    )
    var chatTemplate: String?
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 1.0
    @Option(
        name: .customLong("top-p"),
        help: "Nucleus sampling: keep the smallest set of tokens with this much probability.")
    var topP: Float = 0.9
    @Option(help: "Seed of the sampler (the same seed gives the same text).")
    var seed: UInt64 = 0
    @Option(help: "New tokens to generate at most.")
    var maxTokens = 256
    @Option(help: "Threads for GEMM and kernels.")
    var threads = 2

    func validate() throws {
        guard temperature >= 0 else { throw ValidationError("--temperature must be ≥ 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard maxTokens > 0 else { throw ValidationError("--max-tokens must be positive") }
        try validateThreads(threads)
        if let name = chatTemplate, ChatTemplate.named(name) == nil {
            throw ValidationError(
                "unknown chat template '\(name)'; supported: \(ChatTemplate.supportedNames.joined(separator: ", "))")
        }
    }

    func run() throws {
        GEMM.setThreads(threads)
        let loaded = try source.load()
        let m = loaded.model, tok = loaded.tokenizer
        var text = prompt
        if chat {
            guard let template = chatTemplate.flatMap(ChatTemplate.named) ?? loaded.chatTemplate else {
                throw ValidationError(
                    """
                    \(source.model) names no chat template we recognise; pass --chat-template with one of \
                    \(ChatTemplate.supportedNames.joined(separator: ", "))
                    """
                )
            }
            text = try template.render(
                [ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true,
                bos: loaded.templateTokens.bos, eos: loaded.templateTokens.eos)
        }
        // A chat template writes BOS itself where the model needs it (as transformers' apply_chat_template does).
        let promptIDs = (chat ? [] : (tok.bos.map { [$0] } ?? [])) + tok.encode(text)
        guard !promptIDs.isEmpty else {
            throw ValidationError("the prompt is empty and the tokenizer has no BOS token")
        }
        var sampler = Sampler(temperature: temperature, topP: topP, seed: seed)
        let out = FileHandle.standardOutput
        if !chat {
            for (i, id) in promptIDs.enumerated() where i > 0 || tok.bos == nil {
                out.write(Data(tok.decode(id, after: i > 0 ? promptIDs[i - 1] : nil)))
            }
        }
        var previous = promptIDs.last!
        try m.generate(prompt: promptIDs, maxNewTokens: maxTokens, sampler: &sampler, stop: tok.stopTokens) { id in
            out.write(Data(tok.decode(id, after: previous)))
            previous = id
        }
        out.write(Data("\n".utf8))
    }
}
