import Foundation
import Testing
import Datasets
import Formats
@testable import Training

@Suite("Run data")
struct RunDataTests {
    /// Every Unicode scalar as an id mod 24; no BOS, no stop token.
    struct Scalars: Tokenizer {
        var vocabularySize: Int { 24 }
        var bos: Int32? { nil }
        var stopTokens: Set<Int32> { [] }
        func encode(_ text: String) -> [Int32] { text.unicodeScalars.map { Int32($0.value % 24) } }
        func encodeContinuation(_ text: String) -> [Int32] { encode(text) }
        func decode(_ id: Int32, after previous: Int32?) -> [UInt8] { [UInt8(97 + id)] }
    }

    @Test("a record the chat template cannot render, or that has no template, is refused naming its file and line")
    func located() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-rundata-\(getpid()).jsonl")
            .path
        let lines = [
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "again"}, "#
                + #"{"role": "assistant", "content": "Hello"}]}"#,
        ]
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var settings = RunSettings()
        settings.data.train = path
        let data = try RunData(settings.data)
        func problem(_ template: ChatTemplate?) -> DataError? {
            do {
                _ = try data.encode(ExampleEncoder(tokenizer: Scalars(), template: template), maxLength: 1000)
                return nil
            } catch { return error as? DataError }
        }
        let alternating = try #require(problem(.llama2))
        #expect(alternating.file == path && alternating.line == 2)
        #expect(alternating.problem.contains("the llama2 chat template: conversation roles must alternate"))
        let none = try #require(problem(nil))
        #expect(none.file == path && none.line == 1 && none.problem.contains("names no chat template"))
    }
}
