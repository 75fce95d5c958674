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

/// Renders conversations into the text a chat model was trained on.
public enum ChatTemplate: Sendable, Equatable {
    /// `<|im_start|>role\ncontent<|im_end|>\n`; `defaultSystem` is added when the conversation has none.
    case chatML(defaultSystem: String?)

    public static let supportedNames = ["chatml"]

    /// Recognises a Jinja template string (from tokenizer_config.json or GGUF metadata).
    public static func recognise(_ template: String) -> ChatTemplate? {
        guard template.contains("<|im_start|>") else { return nil }
        // A literal default system turn, e.g. '<|im_start|>system\nYou are …<|im_end|>\n' (GGUF stores real
        // newlines, tokenizer_config.json escaped ones).
        let text = template.replacingOccurrences(of: "\\n", with: "\n")
        guard let start = text.range(of: "<|im_start|>system\n"),
              let end = text.range(of: "<|im_end|>", range: start.upperBound..<text.endIndex),
              !text[start.upperBound..<end.lowerBound].contains("{") else { return .chatML(defaultSystem: nil) }
        return .chatML(defaultSystem: String(text[start.upperBound..<end.lowerBound]))
    }

    /// The conversation as text; with `addGenerationPrompt` it ends where the assistant's reply starts.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        switch self {
        case .chatML(let defaultSystem):
            var all = messages
            if let system = defaultSystem, messages.first?.role != "system" {
                all.insert(ChatMessage(role: "system", content: system), at: 0)
            }
            var text = all.map { "<|im_start|>\($0.role)\n\($0.content)<|im_end|>\n" }.joined()
            if addGenerationPrompt { text += "<|im_start|>assistant\n" }
            return text
        }
    }
}
