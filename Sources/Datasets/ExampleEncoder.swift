import Formats
import TensorCore
import Llama

/// Token ids with, for each, whether the model is trained to predict it (prompt tokens are masked).
public struct TokenizedExample: Sendable, Equatable {
    public var ids: [Int32]
    public var trained: [Bool]

    public init(ids: [Int32], trained: [Bool]) {
        precondition(ids.count == trained.count, "TokenizedExample: \(ids.count) ids, \(trained.count) flags")
        self.ids = ids
        self.trained = trained
    }

    mutating func append(_ more: [Int32], trained flag: Bool) {
        ids += more
        trained += Array(repeating: flag, count: more.count)
    }
}

/// Turns records into token ids and training masks.
///
/// Prompt masking is on by default for prompt/completion, alpaca and the non-assistant turns of
/// messages. The end of sequence (plain text, prompt/completion) or the template's end-of-turn
/// marker (chat) is part of the trained tokens, so the model learns to stop.
public struct ExampleEncoder {
    public let tokenizer: any Tokenizer
    public let template: ChatTemplate?
    public let templateTokens: (bos: String, eos: String)
    /// Train on prompts too (off by default).
    public var trainOnPrompt = false
    /// The task of ``Record/classified(text:label:)`` records.
    public var task: ClassificationTask?

    public init(
        tokenizer: any Tokenizer, template: ChatTemplate?, templateTokens: (bos: String, eos: String) = ("", "")
    ) {
        self.tokenizer = tokenizer
        self.template = template
        self.templateTokens = templateTokens
    }

    /// The end-of-sequence id: the tokenizer's first stop token.
    var eos: Int32? { tokenizer.stopTokens.min() }

    /// A warning when no example trains a stop token: the model would not learn to end its replies.
    public func stopTokenWarning(_ examples: [TokenizedExample]) -> String? {
        guard task == nil else { return nil }  // a classifier is trained on label words and need not stop
        let stops = tokenizer.stopTokens
        let trained = examples.contains { e in zip(e.ids, e.trained).contains { $0.1 && stops.contains($0.0) } }
        return trained
            ? nil
            : """
            no example trains a stop token \(stops.sorted()): the model will not learn where to stop (check the \
            chat template or add end-of-sequence tokens)
            """
    }

    public func encode(_ record: Record) throws -> TokenizedExample {
        var out = TokenizedExample(ids: [], trained: [])
        switch record {
        case .text(let text):
            if let bos = tokenizer.bos { out.append([bos], trained: false) }
            out.append(tokenizer.encode(text), trained: true)
            if let eos { out.append([eos], trained: true) }
        case .promptCompletion(let prompt, let completion):
            if let bos = tokenizer.bos { out.append([bos], trained: false) }
            out.append(tokenizer.encode(prompt), trained: trainOnPrompt)
            out.append(tokenizer.encodeContinuation(completion), trained: true)
            if let eos { out.append([eos], trained: true) }
        case .alpaca(let instruction, let input, let output):
            let user = input.isEmpty ? instruction : instruction + "\n\n" + input
            if template == nil { return try encode(.promptCompletion(prompt: user + "\n\n", completion: output)) }
            return try encode(
                .messages([ChatMessage(role: "user", content: user), ChatMessage(role: "assistant", content: output)]))
        case .messages(let messages):
            guard let template else {
                throw DataError(
                    file: "data", line: nil,
                    problem: """
                        the record has chat messages but the model names no chat template; choose one of \
                        \(ChatTemplate.supportedNames)
                        """)
            }
            // Each assistant turn is the difference between the conversation rendered up to it with a
            // generation prompt and rendered through it; everything before is prompt.
            var rendered = ""
            for (i, m) in messages.enumerated() where m.role == "assistant" {
                let prompt = try template.render(
                    Array(messages[..<i]), addGenerationPrompt: true, bos: templateTokens.bos, eos: templateTokens.eos)
                let through = try template.render(
                    Array(messages[...i]), addGenerationPrompt: false, bos: templateTokens.bos, eos: templateTokens.eos)
                guard prompt.hasPrefix(rendered), through.hasPrefix(prompt) else {
                    throw DataError(
                        file: "data", line: nil,
                        problem: """
                            the \(template.name) chat template: turn \(i + 1) does not extend the rendered \
                            conversation; masking needs a template whose rendering grows turn by turn
                            """)
                }
                let head = String(prompt.dropFirst(rendered.count)), reply = String(through.dropFirst(prompt.count))
                out.append(
                    rendered.isEmpty ? tokenizer.encode(head) : tokenizer.encodeContinuation(head),
                    trained: trainOnPrompt)
                out.append(tokenizer.encodeContinuation(reply), trained: true)
                rendered = through
            }
            let all = try template.render(
                messages, addGenerationPrompt: false, bos: templateTokens.bos, eos: templateTokens.eos)
            if all.count > rendered.count {
                out.append(tokenizer.encodeContinuation(String(all.dropFirst(rendered.count))), trained: trainOnPrompt)
            }
        case .classified(let text, let label):
            return try candidates(text)[label]
        }
        return out
    }

    /// The candidates and label of a ``Record/classified(text:label:)`` record; nil for other records.
    public func classificationExample(_ record: Record) throws -> ClassificationExample? {
        guard case .classified(let text, let label) = record else { return nil }
        return ClassificationExample(candidates: try candidates(text), label: label)
    }

    /// One example per class of the task: the prompt made from `text` (masked) followed by that class's
    /// label word (trained), with no end of sequence, as MeZO scores candidates.
    public func candidates(_ text: String) throws -> [TokenizedExample] {
        guard let task else {
            throw DataError(
                file: "data.task", line: nil,
                problem: "labelled records need a classification task (data.task: classification)")
        }
        var prompt = TokenizedExample(ids: [], trained: [])
        if let bos = tokenizer.bos { prompt.append([bos], trained: false) }
        prompt.append(tokenizer.encode(task.prompt(text)), trained: false)
        return task.labelWords.map { word in
            var e = prompt
            e.append(tokenizer.encodeContinuation(word), trained: true)
            return e
        }
    }
}
