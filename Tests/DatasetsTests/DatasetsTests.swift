import Foundation
import Testing
@testable import Datasets
import Formats
import Llama
import TestSupport

/// stories260K's tokenizer from ../shared/real, with ChatML for the chat cases (tests using it need
/// SharedReal.available).
func storiesEncoder() throws -> ExampleEncoder {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/real/model/stories260K/tok512.bin").path
    return ExampleEncoder(
        tokenizer: try ScoredPieceTokenizer.llama2c(path: path, vocabularySize: 512),
        template: .chatML(defaultSystem: nil))
}

func jsonl(_ name: String, _ lines: [String]) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-data-\(getpid())-\(name).jsonl")
        .path
    try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Datasets")
struct DatasetsTests {
    @Test("the four JSONL shapes are recognised")
    func shapes() throws {
        let path = try jsonl(
            "shapes",
            [
                #"{"text": "Once upon a time."}"#,
                #"{"prompt": "Q: 2+2?", "completion": " 4"}"#,
                #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"#,
                #"{"instruction": "Add", "input": "2 and 2", "output": "4"}"#, "",
            ])
        #expect(
            try DataReader.read(path) == [
                .text("Once upon a time."), .promptCompletion(prompt: "Q: 2+2?", completion: " 4"),
                .messages([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello!")]
                ),
                .alpaca(instruction: "Add", input: "2 and 2", output: "4"),
            ])
    }

    @Test(
        "bad lines name the file, the line and the field",
        arguments: [
            (#"{"text": "ok"}\n{"text": 3}"#, 2, #"field "text" must be a string"#),
            (#"{"text": "ok"}\nnot json"#, 2, "not a JSON object"),
            (#"{"prompt": "only a prompt"}"#, 1, #"field "completion" must be a string"#),
            (#"{"messages": [{"role": "user"}]}"#, 1, #"messages[0] needs string fields "role" and "content""#),
            (#"{"question": "?", "answer": "!"}"#, 1, "unknown record shape"),
            (
                #"{"messages": [{"role": "usr", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#, 1,
                "roles are system, user and assistant"
            ),
            (#"{"messages": [{"role": "user", "content": "Hi"}]}"#, 1, "no assistant turn"),
            (
                #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}"#, 1,
                "empty assistant turn"
            ),
            (#"{"prompt": "Q?", "completion": ""}"#, 1, #"field "completion" is empty"#),
            (#"{"instruction": "Add", "output": ""}"#, 1, #"field "output" is empty"#),
            (#"{"instruction": "", "output": "4"}"#, 1, #"field "instruction" is empty"#),
            (#"{"text": ""}"#, 1, #"field "text" is empty"#),
            (#"{"text": "a", "prompt": "b", "completion": "c"}"#, 1, "mixes the fields of text and prompt/completion"),
        ])
    func badLines(content: String, line: Int, problem: String) throws {
        let path = try jsonl("bad-\(line)-\(abs(content.hashValue))", content.components(separatedBy: "\\n"))
        let error = try #require(throws: DataError.self) { try DataReader.read(path) }
        #expect(error.file == path && error.line == line && error.problem.contains(problem), "\(error)")
    }

    @Test(
        """
        data.on_error: skip leaves invalid records out and reports each; a file of only invalid records is still \
        refused
        """
    )
    func skipInvalid() throws {
        let path = try jsonl("skip", [#"{"text": "one"}"#, #"{"text": ""}"#, "not json", #"{"text": "two"}"#])
        #expect(throws: DataError.self) { try DataReader.readNumbered(path) }
        let read = try DataReader.readNumbered(path, onError: .skip)
        #expect(read.records.map(\.line) == [1, 4] && read.records.map(\.record) == [.text("one"), .text("two")])
        #expect(read.skipped.map(\.line) == [2, 3])
        let bad = try jsonl("skip-all", [#"{"text": ""}"#])
        let error = try #require(throws: DataError.self) { try DataReader.readNumbered(bad, onError: .skip) }
        #expect(error.problem.contains("every record is invalid (1 skipped)"), "\(error)")
    }

    @Test("an empty dataset is refused")
    func empty() throws {
        let error = try #require(throws: DataError.self) { try DataReader.read(try jsonl("empty", ["", "  "])) }
        #expect(error.problem.contains("empty"))
    }

    /// The text of the trained (or masked) tokens.
    func text(_ e: TokenizedExample, trained: Bool, _ tok: any Tokenizer) -> String {
        tok.decode(zip(e.ids, e.trained).filter { $0.1 == trained }.map(\.0))
    }

    @Test(
        "prompt/completion trains the completion and the end of sequence, not the prompt",
        .enabled(if: SharedReal.available))
    func promptMasking() throws {
        let encoder = try storiesEncoder(), tok = encoder.tokenizer
        let e = try encoder.encode(.promptCompletion(prompt: "Once upon a time", completion: " there was a cat."))
        #expect(e.ids.first == tok.bos && e.trained.first == false)
        #expect(e.ids.last == encoder.eos && e.trained.last == true)
        #expect(text(e, trained: false, tok).hasSuffix("Once upon a time"))
        #expect(text(e, trained: true, tok).hasPrefix(" there was a cat."))
    }

    @Test(
        "messages train assistant turns with their end-of-turn marker; the rest is masked",
        .enabled(if: SharedReal.available))
    func messageMasking() throws {
        let encoder = try storiesEncoder(), tok = encoder.tokenizer
        let e = try encoder.encode(
            .messages([
                ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi"),
                ChatMessage(role: "assistant", content: "Hello!"), ChatMessage(role: "user", content: "Bye"),
                ChatMessage(role: "assistant", content: "Goodbye."),
            ]))
        let trained = tok.decode(zip(e.ids, e.trained).filter(\.1).map(\.0))
        #expect(trained.contains("Hello!<|im_end|>") && trained.contains("Goodbye.<|im_end|>"))
        #expect(!trained.contains("Be brief") && !trained.contains("Bye<") && !trained.contains("assistant"))
        #expect(
            tok.decode(e.ids, after: tok.bos)
                == (try ChatTemplate.chatML(defaultSystem: nil).render(
                    [
                        ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: "Hi"),
                        ChatMessage(role: "assistant", content: "Hello!"), ChatMessage(role: "user", content: "Bye"),
                        ChatMessage(role: "assistant", content: "Goodbye."),
                    ], addGenerationPrompt: false)))
    }

    @Test("batches shift targets, mask untrained and padded positions, and refuse sequences that are too long")
    func batching() throws {
        let a = TokenizedExample(ids: [1, 10, 11, 12, 2], trained: [false, false, true, true, true])
        let b = TokenizedExample(ids: [1, 20, 2], trained: [false, true, true])
        let batch = try Batcher.batch([a, b], maxLength: 8)
        #expect(batch.batchSize == 2 && batch.length == 4)
        #expect(batch.inputs == [1, 10, 11, 12, 1, 20, 0, 0])
        #expect(batch.targets == [-1, 11, 12, 2, 20, 2, -1, -1])
        #expect(throws: DataError.self) { try Batcher.batch([a], maxLength: 3) }
    }

    @Test("shuffling is a permutation fixed by seed and epoch")
    func shuffling() {
        let a = Batcher.shuffled(100, seed: 7, epoch: 0)
        #expect(a.sorted() == Array(0..<100))
        #expect(a == Batcher.shuffled(100, seed: 7, epoch: 0))
        #expect(a != Batcher.shuffled(100, seed: 7, epoch: 1) && a != Batcher.shuffled(100, seed: 8, epoch: 0))
    }
}

@Suite("Stop-token warning")
struct StopTokenWarningTests {
    @Test(
        "data that never trains a stop token gets a warning; text records (which end in one) do not",
        .enabled(if: SharedReal.available))
    func warning() throws {
        let encoder = try storiesEncoder()
        let trainedStop = try encoder.encode(.text("Once upon a time."))
        #expect(encoder.stopTokenWarning([trainedStop]) == nil)
        var untrained = trainedStop
        untrained.trained = untrained.trained.map { _ in false } + []
        untrained.trained[1] = true
        #expect(encoder.stopTokenWarning([untrained])?.contains("will not learn where to stop") == true)
    }
}
