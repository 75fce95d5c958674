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
    /// `{"instruction", "input", "output"}` (Alpaca): a user turn of instruction (and input), an assistant turn of
    /// output.
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
    /// What to do with an invalid record (`data.on_error`).
    public enum OnError: String, Sendable, CaseIterable {
        /// Refuse the file, naming the first invalid record.
        case fail
        /// Leave invalid records out; the caller reports how many and the first one.
        case skip
    }

    /// The longest line read, in bytes: a longer one is refused (a file that is not line-separated text).
    public static let lineLimit = 16 << 20

    /// The records of `path` (".tsv" files as TSV, anything else as JSONL). With a classification `task`,
    /// every record must be a text with a label of the task.
    public static func read(_ path: String, task: ClassificationTask? = nil) throws -> [Record] {
        try readNumbered(path, task: task).records.map(\.record)
    }

    /// The records of `path` with the line each came from (1-based), and with `onError: .skip` the errors of the
    /// records left out. The file's structure (its TSV header, over-long lines) is never skipped.
    public static func readNumbered(
        _ path: String, task: ClassificationTask? = nil, onError: OnError = .fail
    ) throws
        -> (records: [(line: Int, record: Record)], skipped: [DataError])
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError(file: path, line: nil, problem: "cannot read the file; check the path")
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if let long = lines.firstIndex(where: { $0.utf8.count > lineLimit }) {
            throw DataError(
                file: path, line: long + 1,
                problem:
                    """
                    the line has \(lines[long].utf8.count) bytes, above the limit of \(lineLimit); records are one per \
                    line
                    """
            )
        }
        var records: [(line: Int, record: Record)] = [], skipped: [DataError] = []
        func add(_ line: Int, _ make: () throws -> Record) throws {
            do { records.append((line, try make())) } catch let e as DataError where onError == .skip {
                skipped.append(e)
            }
        }
        if path.hasSuffix(".tsv") {
            guard let task else {
                throw DataError(
                    file: path, line: nil,
                    problem:
                        """
                        a TSV file is read as a classification task; set data.task: classification with \
                        data.label_words
                        """
                )
            }
            let header =
                lines.first.map {
                    $0.split(separator: "\t", omittingEmptySubsequences: false).map {
                        $0.trimmingCharacters(in: .whitespaces)
                    }
                } ?? []
            guard let textColumn = header.firstIndex(where: { $0 == "sentence" || $0 == "text" }),
                let labelColumn = header.firstIndex(of: "label")
            else {
                throw DataError(
                    file: path, line: 1,
                    problem: "the header must name a 'sentence' (or 'text') column and a 'label' column, got \(header)")
            }
            for (n, line) in lines.enumerated().dropFirst() where !line.allSatisfy(\.isWhitespace) {
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                try add(n + 1) {
                    guard fields.count == header.count else {
                        throw DataError(
                            file: path, line: n + 1,
                            problem: "\(fields.count) tab-separated fields; the header has \(header.count)")
                    }
                    let text = fields[textColumn].trimmingCharacters(in: .whitespaces)
                    guard !text.isEmpty else {
                        throw DataError(file: path, line: n + 1, problem: "the '\(header[textColumn])' field is empty")
                    }
                    return .classified(
                        text: text, label: try task.label(String(fields[labelColumn]), file: path, line: n + 1))
                }
            }
        } else {
            for (n, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
                try add(n + 1) { try parse(line, file: path, line: n + 1, task: task) }
            }
        }
        if records.isEmpty {
            throw DataError(
                file: path, line: nil,
                problem: skipped.isEmpty
                    ? "the dataset is empty"
                    : "every record is invalid (\(skipped.count) skipped); the first: \(skipped[0])")
        }
        return (records, skipped)
    }

    /// `limit` records (0: all) after skipping `skip`, in an order shuffled by `seed` (the file's order when
    /// both are 0). Two subsets of one file with the same seed and disjoint ranges share no record.
    public static func subset<T>(_ records: [T], skip: Int, limit: Int, seed: UInt64, file: String) throws -> [T] {
        guard skip > 0 || limit > 0 else { return records }
        guard skip >= 0, limit >= 0, max(limit, 1) <= records.count, skip <= records.count - max(limit, 1) else {
            throw DataError(
                file: file, line: nil,
                problem: "skip \(skip) + limit \(limit) records, but the file has \(records.count)")
        }
        let order = Batcher.shuffled(records.count, seed: seed, epoch: 0)
        return order[skip..<(limit > 0 ? skip + limit : records.count)].map { records[$0] }
    }

    static func parse(_ line: Substring, file: String, line n: Int, task: ClassificationTask? = nil) throws -> Record {
        func fail(_ problem: String) -> DataError { DataError(file: file, line: n, problem: problem) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw fail("not a JSON object")
        }
        /// The string field `key`; `nonEmpty` ones must hold some text.
        func string(_ key: String, nonEmpty: Bool = true) throws -> String {
            guard let value = object[key] as? String else { throw fail("field \"\(key)\" must be a string") }
            if nonEmpty, value.isEmpty { throw fail("field \"\(key)\" is empty") }
            return value
        }
        if let task {
            let label: String
            switch object["label"] {
            case let s as String: label = s
            case let value where JSONNumber.integer(value) != nil: label = String(JSONNumber.integer(value)!)
            default: throw fail("a classification record needs a \"label\" field: a class index or a label word")
            }
            return .classified(text: try string("text"), label: try task.label(label, file: file, line: n))
        }
        let shapes = [["text"], ["prompt", "completion"], ["messages"], ["instruction", "input", "output"]]
            .filter { $0.contains { object[$0] != nil } }
        if shapes.count > 1 {
            throw fail(
                """
                the record mixes the fields of \
                \(shapes.map { $0.filter { object[$0] != nil }.joined(separator: "/") }.joined(separator: " and ")); \
                use one shape per record
                """
            )
        }
        if object["messages"] != nil {
            guard let turns = object["messages"] as? [[String: Any]], !turns.isEmpty else {
                throw fail("field \"messages\" must be a non-empty list of {\"role\", \"content\"} objects")
            }
            let messages = try turns.enumerated().map { i, t in
                guard let role = t["role"] as? String, let content = t["content"] as? String else {
                    throw fail("messages[\(i)] needs string fields \"role\" and \"content\"")
                }
                guard ["system", "user", "assistant"].contains(role) else {
                    throw fail("messages[\(i)] has role '\(role.prefix(40))'; roles are system, user and assistant")
                }
                if role == "assistant", content.isEmpty { throw fail("messages[\(i)] is an empty assistant turn") }
                return ChatMessage(role: role, content: content)
            }
            guard messages.contains(where: { $0.role == "assistant" }) else {
                throw fail("no assistant turn: nothing to train")
            }
            return .messages(messages)
        }
        if object["prompt"] != nil || object["completion"] != nil {
            return .promptCompletion(
                prompt: try string("prompt", nonEmpty: false), completion: try string("completion"))
        }
        if object["instruction"] != nil || object["output"] != nil {
            return .alpaca(
                instruction: try string("instruction"), input: (object["input"] as? String) ?? "",
                output: try string("output"))
        }
        if object["text"] != nil { return .text(try string("text")) }
        throw fail(
            """
            unknown record shape (fields: \(object.keys.sorted())); expected text, prompt/completion, messages, or \
            instruction/input/output
            """
        )
    }
}
