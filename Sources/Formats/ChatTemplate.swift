import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Renders conversations into the text a chat model was trained on, as the model's Jinja template
/// does (checked against Jinja with transformers' settings on the real template strings).
public enum ChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n`; `defaultSystem` is added when the conversation has none.
    case chatML(defaultSystem: String?)
    /// `<s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST] assistant </s>` (Llama 2 chat).
    case llama2
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` (Llama 3 instruct).
    case llama3
    /// `<s>[INST] user [/INST]assistant</s>` (Mistral instruct v0.1/v0.2; no system role).
    case mistral
    /// `<|role|>\ncontent</s>\n` (Zephyr).
    case zephyr

    public static let supportedNames = ["chatml", "llama2", "llama3", "mistral", "zephyr"]

    /// The template's name, as `supportedNames` lists it.
    public var name: String {
        switch self {
        case .chatML: "chatml"
        case .llama2: "llama2"
        case .llama3: "llama3"
        case .mistral: "mistral"
        case .zephyr: "zephyr"
        }
    }

    /// A conversation this template cannot render, as an error.
    func refuse(_ problem: String, fix: String) -> FormatError {
        FormatError(file: "the \(name) chat template", problem: problem, fix: fix)
    }

    /// A built-in template by name.
    public static func named(_ name: String) -> ChatTemplate? {
        switch name {
        case "chatml": .chatML(defaultSystem: nil)
        case "llama2": .llama2
        case "llama3": .llama3
        case "mistral": .mistral
        case "zephyr": .zephyr
        default: nil
        }
    }

    /// Recognises a Jinja template string (from tokenizer_config.json or GGUF metadata) by its markers.
    public static func recognise(_ template: String) -> ChatTemplate? {
        if template.contains("<|im_start|>") { return .chatML(defaultSystem: defaultSystem(template)) }
        if template.contains("<|start_header_id|>") { return .llama3 }
        if template.contains("<<SYS>>") { return .llama2 }
        if template.contains("[INST]") { return .mistral }
        if template.contains("<|user|>") && template.contains("<|assistant|>") { return .zephyr }
        return nil
    }

    /// A literal default system turn, e.g. '<|im_start|>system\nYou are …<|im_end|>\n' (GGUF stores real
    /// newlines, tokenizer_config.json escaped ones).
    private static func defaultSystem(_ template: String) -> String? {
        let text = template.replacingOccurrences(of: "\\n", with: "\n")
        guard let start = text.range(of: "<|im_start|>system\n"),
            let end = text.range(of: "<|im_end|>", range: start.upperBound..<text.endIndex),
            !text[start.upperBound..<end.lowerBound].contains("{")
        else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    /// The conversation as text; with `addGenerationPrompt` it ends where the assistant's reply starts
    /// (Llama 2 and Mistral templates have no such prompt: the text ends with " [/INST]").
    /// `bos` and `eos` are the tokenizer's texts for those tokens.
    public func render(
        _ messages: [ChatMessage], addGenerationPrompt: Bool, bos: String = "", eos: String = ""
    ) throws -> String {
        func trimmed(_ s: String) -> String { s.trimmingCharacters(in: .whitespacesAndNewlines) }
        func alternating(_ turns: ArraySlice<ChatMessage>) throws {
            for (i, m) in turns.enumerated() where (m.role == "user") != (i % 2 == 0) {
                throw refuse(
                    "conversation roles must alternate user/assistant/user/…; turn \(i + 1) is '\(m.role)'",
                    fix: "Reorder the conversation's turns")
            }
        }
        switch self {
        case .chatML(let defaultSystem):
            var all = messages
            if let system = defaultSystem, messages.first?.role != "system" {
                all.insert(ChatMessage(role: "system", content: system), at: 0)
            }
            return all.map { "<|im_start|>\($0.role)\n\($0.content)<|im_end|>\n" }.joined()
                + (addGenerationPrompt ? "<|im_start|>assistant\n" : "")
        case .llama3:
            return messages.enumerated().map { i, m in
                (i == 0 ? bos : "") + "<|start_header_id|>\(m.role)<|end_header_id|>\n\n" + trimmed(m.content)
                    + "<|eot_id|>"
            }.joined() + (addGenerationPrompt ? "<|start_header_id|>assistant<|end_header_id|>\n\n" : "")
        case .llama2:
            let system = messages.first?.role == "system" ? messages.first!.content : nil
            let turns = messages.dropFirst(system == nil ? 0 : 1)
            try alternating(turns)
            return turns.enumerated().map { i, m in
                let content = (i == 0 && system != nil) ? "<<SYS>>\n\(system!)\n<</SYS>>\n\n" + m.content : m.content
                return m.role == "user"
                    ? bos + "[INST] " + trimmed(content) + " [/INST]"
                    : m.role == "assistant" ? " " + trimmed(content) + " " + eos : ""
            }.joined()
        case .mistral:
            try alternating(messages[...])
            if let other = messages.first(where: { $0.role != "user" && $0.role != "assistant" }) {
                throw refuse(
                    "only user and assistant roles are supported, not '\(other.role)'",
                    fix: "Fold the other turns into the user's")
            }
            return bos
                + messages.map { $0.role == "user" ? "[INST] " + $0.content + " [/INST]" : $0.content + eos }.joined()
        case .zephyr:
            return messages.filter { ["user", "system", "assistant"].contains($0.role) }
                .map { "<|\($0.role)|>\n" + $0.content + eos + "\n" }.joined()
                + (addGenerationPrompt && !messages.isEmpty ? "<|assistant|>\n" : "")
        }
    }
}
