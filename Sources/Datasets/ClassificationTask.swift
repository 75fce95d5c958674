import Foundation

/// A classification task scored as MeZO does: each text becomes a prompt through `template`, each class
/// has a label word (or option text) that follows the prompt, training is the LM loss on the gold label
/// word, and a prediction is the class whose label word has the highest mean token log-likelihood.
public struct ClassificationTask: Sendable, Equatable, Codable {
    /// The prompt, with `{text}` where the record's text goes, e.g. "{text} It was".
    public var template: String
    /// One per class, in label order, e.g. [" terrible", " great"].
    public var labelWords: [String]

    public init(template: String, labelWords: [String]) throws {
        guard template.contains("{text}") else {
            throw DataError(
                file: "data.template", line: nil, problem: "the template '\(template)' has no {text} placeholder")
        }
        guard labelWords.count >= 2, Set(labelWords).count == labelWords.count, !labelWords.contains(where: \.isEmpty)
        else {
            throw DataError(
                file: "data.label_words", line: nil,
                problem: "a classification task needs two or more distinct, non-empty label words, got \(labelWords)")
        }
        self.template = template
        self.labelWords = labelWords
    }

    public func prompt(_ text: String) -> String { template.replacingOccurrences(of: "{text}", with: text) }

    /// The class of a label as written in a data file: its index ("0", "1", …) or its label word
    /// (compared without surrounding spaces, ignoring case).
    public func label(_ raw: String, file: String, line: Int) throws -> Int {
        let text = raw.trimmingCharacters(in: .whitespaces)
        if let i = Int(text), labelWords.indices.contains(i) { return i }
        if let i = labelWords.firstIndex(where: {
            $0.trimmingCharacters(in: .whitespaces).lowercased() == text.lowercased()
        }) {
            return i
        }
        throw DataError(
            file: file, line: line,
            problem:
                """
                field \"label\": '\(text)' is not a class; use 0..<\(labelWords.count) or one of \
                \(labelWords.map { $0.trimmingCharacters(in: .whitespaces) })
                """
        )
    }
}

/// A labelled text encoded once per class (see ``ExampleEncoder/candidates(_:)``).
public struct ClassificationExample: Sendable, Equatable {
    public var candidates: [TokenizedExample]
    public var label: Int

    public init(candidates: [TokenizedExample], label: Int) {
        self.candidates = candidates
        self.label = label
    }
}
