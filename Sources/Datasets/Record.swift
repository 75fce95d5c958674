import Foundation
import Formats

/// One training example as written in a JSONL file, in one of the shapes users bring.
public enum Record: Sendable, Equatable {
    /// `{"text": …}`: every token is trained.
    case text(String)
    /// `{"prompt": …, "completion": …}`: the completion (and end of sequence) is trained.
    case promptCompletion(prompt: String, completion: String)
    /// `{"messages": [{"role", "content"}, …]}` through the chat template: assistant turns are trained.
    case messages([ChatMessage])
    /// `{"instruction", "input", "output"}` (Alpaca): a user turn of instruction (and input), an assistant turn of output.
    case alpaca(instruction: String, input: String, output: String)
}

/// A data file that cannot be used, naming the file, the line and the field.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let problem: String
    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(problem)" }
}

public enum JSONLReader {
    /// The records of a JSONL file; every line must be one of the ``Record`` shapes.
    public static func read(_ path: String) throws -> [Record] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, line: nil, problem: "cannot read the file; check the path")
        }
        var records: [Record] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            records.append(try parse(line, file: path, line: n + 1))
        }
        if records.isEmpty { throw DataError(file: path, line: nil, problem: "the dataset is empty") }
        return records
    }

    static func parse(_ line: Substring, file: String, line n: Int) throws -> Record {
        func fail(_ problem: String) -> DataError { DataError(file: file, line: n, problem: problem) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        func string(_ key: String) throws -> String {
            guard let value = object[key] as? String else { throw fail("field \"\(key)\" must be a string") }
            return value
        }
        if object["messages"] != nil {
            guard let turns = object["messages"] as? [[String: Any]], !turns.isEmpty else {
                throw fail("field \"messages\" must be a non-empty list of {\"role\", \"content\"} objects")
            }
            return .messages(try turns.enumerated().map { i, t in
                guard let role = t["role"] as? String, let content = t["content"] as? String else {
                    throw fail("messages[\(i)] needs string fields \"role\" and \"content\"")
                }
                return ChatMessage(role: role, content: content)
            })
        }
        if object["prompt"] != nil || object["completion"] != nil {
            return .promptCompletion(prompt: try string("prompt"), completion: try string("completion"))
        }
        if object["instruction"] != nil || object["output"] != nil {
            return .alpaca(instruction: try string("instruction"), input: (object["input"] as? String) ?? "", output: try string("output"))
        }
        if object["text"] != nil { return .text(try string("text")) }
        throw fail("unknown record shape (fields: \(object.keys.sorted())); expected text, prompt/completion, messages, or instruction/input/output")
    }
}
