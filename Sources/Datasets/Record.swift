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
    /// `{"text": …, "label": …}` (or a TSV row) of a ``ClassificationTask``: the prompt made from the text
    /// is followed by the label word of class `label`, which alone is trained.
    case classified(text: String, label: Int)
}

/// A data file that cannot be used, naming the file, the line and the field.
public struct DataError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let problem: String

    public init(file: String, line: Int?, problem: String) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String { "\(file)\(line.map { ":\($0)" } ?? ""): \(problem)" }
}

/// Reads a data file: JSONL (one ``Record`` per line) or, for a ``ClassificationTask``, also an
/// SST-2-style TSV (a header naming a `sentence` or `text` column and a `label` column).
public enum DataReader {
    /// The records of `path` (".tsv" files as TSV, anything else as JSONL). With a classification `task`,
    /// every record must be a text with a label of the task.
    public static func read(_ path: String, task: ClassificationTask? = nil) throws -> [Record] {
        try readNumbered(path, task: task).map(\.record)
    }

    /// The records of `path` with the line each came from (1-based).
    public static func readNumbered(_ path: String, task: ClassificationTask? = nil) throws -> [(line: Int, record: Record)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, line: nil, problem: "cannot read the file; check the path")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        var records: [(line: Int, record: Record)] = []
        if path.hasSuffix(".tsv") {
            guard let task else {
                throw DataError(file: path, line: nil, problem: "a TSV file is read as a classification task; set data.task: classification with data.label_words")
            }
            let header = lines.first.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
            guard let textColumn = header.firstIndex(where: { $0 == "sentence" || $0 == "text" }), let labelColumn = header.firstIndex(of: "label") else {
                throw DataError(file: path, line: 1, problem: "the header must name a 'sentence' (or 'text') column and a 'label' column, got \(header)")
            }
            for (n, line) in lines.enumerated().dropFirst() where !line.allSatisfy(\.isWhitespace) {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard fields.count > max(textColumn, labelColumn) else {
                    throw DataError(file: path, line: n + 1, problem: "\(fields.count) tab-separated fields; the header has \(header.count)")
                }
                let text = fields[textColumn].trimmingCharacters(in: .whitespaces)
                records.append((n + 1, .classified(text: text, label: try task.label(String(fields[labelColumn]), file: path, line: n + 1))))
            }
        } else {
            for (n, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
                records.append((n + 1, try parse(line, file: path, line: n + 1, task: task)))
            }
        }
        if records.isEmpty { throw DataError(file: path, line: nil, problem: "the dataset is empty") }
        return records
    }

    /// `limit` records (0: all) after skipping `skip`, in an order shuffled by `seed` (the file's order when
    /// both are 0). Two subsets of one file with the same seed and disjoint ranges share no record.
    public static func subset<T>(_ records: [T], skip: Int, limit: Int, seed: UInt64, file: String) throws -> [T] {
        guard skip > 0 || limit > 0 else { return records }
        guard skip >= 0, limit >= 0, skip + max(limit, 1) <= records.count else {
            throw DataError(file: file, line: nil, problem: "skip \(skip) + limit \(limit) records, but the file has \(records.count)")
        }
        let order = Batcher.shuffled(records.count, seed: seed, epoch: 0)
        return order[skip..<(limit > 0 ? skip + limit : records.count)].map { records[$0] }
    }

    static func parse(_ line: Substring, file: String, line n: Int, task: ClassificationTask? = nil) throws -> Record {
        func fail(_ problem: String) -> DataError { DataError(file: file, line: n, problem: problem) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        func string(_ key: String) throws -> String {
            guard let value = object[key] as? String else { throw fail("field \"\(key)\" must be a string") }
            return value
        }
        if let task {
            guard let label = object["label"].map({ "\($0)" }) else { throw fail("a classification record needs a \"label\" field") }
            return .classified(text: try string("text"), label: try task.label(label, file: file, line: n))
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
