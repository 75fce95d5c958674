import Foundation
import TestSupport
import Testing
@testable import Formats

@Suite("Chat templates")
struct ChatTemplateTests {
    struct Case: Decodable {
        struct Message: Decodable { let role: String; let content: String }
        let name: String, template: String, bos: String, eos: String
        let messages: [Message]
        let add_generation_prompt: Bool
        let expected: String?
    }

    @Test("each built-in template renders as Jinja renders the real template (transformers' settings)")
    func matchesJinja() throws {
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixtureURL("chat-templates.json")))
        #expect(Set(cases.map(\.name)) == Set(ChatTemplate.supportedNames))
        for c in cases {
            let template = try #require(ChatTemplate.recognise(c.template), "\(c.name) not recognised")
            if case .chatML = template {
                #expect(c.name == "chatml")
            } else {
                #expect(ChatTemplate.named(c.name) == template)
            }
            let messages = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            let label = "\(c.name), \(messages.count) turns, generation prompt \(c.add_generation_prompt)"
            if let expected = c.expected {
                let text = try template.render(
                    messages, addGenerationPrompt: c.add_generation_prompt, bos: c.bos, eos: c.eos)
                #expect(text == expected, "\(label)")
            } else {
                #expect(throws: FormatError.self, "\(label)") {
                    try template.render(messages, addGenerationPrompt: c.add_generation_prompt, bos: c.bos, eos: c.eos)
                }
            }
        }
    }

    @Test("an unknown template is not recognised")
    func unknown() {
        #expect(ChatTemplate.recognise("{{ messages[0]['content'] }}") == nil)
        #expect(ChatTemplate.named("vicuna") == nil)
    }
}
