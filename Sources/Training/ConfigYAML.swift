import Foundation
import Yams

/// The YAML of a run configuration, read through Yams' node tree into the plain values ``RunConfig`` takes
/// (String, Int, Double, Bool, NSNull, and lists of them). Yams' generic constructor is never used: it traps on
/// some malformed input (a mapping as a key). The text is bounded first: its size, and how deep it nests (the
/// tree is built recursively), each with its own error.
enum ConfigYAML {
    static let byteLimit = 1 << 20
    static let depthLimit = 128

    /// The sections of `text` in file order: section → (key, value) pairs.
    static func sections(_ text: String, file: String) throws -> [(section: String, keys: [(key: String, value: Any)])]
    {
        func fail(_ problem: String) -> TrainingError { TrainingError(message: "\(file): \(problem)") }
        guard text.utf8.count <= byteLimit else {
            throw fail(
                """
                the configuration has \(text.utf8.count) bytes, above the limit of \(byteLimit); a run configuration \
                is a few sections of settings
                """
            )
        }
        if let (line, depth) = deepest(text), depth > depthLimit {
            throw fail("line \(line) nests \(depth) levels deep, above the limit of \(depthLimit)")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch { throw fail("not valid YAML (\(error))") }
        guard let root else { return [] }
        guard case .mapping(let sections) = root else {
            throw fail(
                """
                the top level must be a mapping of sections \
                (\(RunConfig.defaults.keys.sorted().joined(separator: ", ")))
                """
            )
        }
        return try sections.map { name, body in
            let section = try key(name, where: "a section name", fail)
            guard case .mapping(let keys) = body else { throw fail("section '\(section)' must be a mapping of keys") }
            return (
                section,
                try keys.map { k, v in
                    let key = try key(k, where: "a key of section '\(section)'", fail)
                    guard let value = value(v) else {
                        throw fail("'\(section).\(key)' must be a value or a list of values\(line(v))")
                    }
                    return (key, value)
                }
            )
        }
    }

    /// A value written on the command line (`--set section.key=VALUE`); nil when it is not a value or a list of values.
    static func value(_ text: String) -> Any? {
        guard text.utf8.count <= byteLimit, (deepest(text)?.depth ?? 0) <= depthLimit,
            let node = try? Yams.compose(yaml: text)
        else { return nil }
        return value(node)
    }

    /// A scalar as its resolved type (a quoted "1" stays a string), or a list of scalars; nil for anything else.
    static func value(_ node: Node) -> Any? {
        switch node {
        case .scalar: return scalar(node)
        case .sequence(let items):
            let values = items.map { $0.scalar != nil ? scalar($0) : nil }
            return values.allSatisfy { $0 != nil } ? values.map { $0! } : nil
        default: return nil
        }
    }

    private static func scalar(_ node: Node) -> Any? {
        switch Tag.Name(rawValue: node.tag.description) {
        case .null: NSNull()
        case .bool: node.bool
        case .int: node.int ?? node.string  // an integer beyond Int stays text, refused by the key's type check
        case .float: node.float
        default: node.string
        }
    }

    private static func key(_ node: Node, where what: String, _ fail: (String) -> TrainingError) throws -> String {
        guard case .scalar(let s) = node else { throw fail("\(what) must be plain text\(line(node))") }
        return s.string
    }

    private static func line(_ node: Node) -> String { node.mark.map { " (line \($0.line))" } ?? "" }

    /// The most deeply nested line: leading spaces and block indicators ("- ", "? ") plus open flow brackets.
    private static func deepest(_ text: String) -> (line: Int, depth: Int)? {
        var best: (line: Int, depth: Int)?, flow = 0
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var depth = 0, rest = Substring(line)
            while let c = rest.first,
                c == " " || c == "\t"
                    || ((c == "-" || c == "?") && rest.dropFirst().first.map { $0 == " " || $0 == "\t" } ?? true)
            {
                depth += 1
                rest = rest.dropFirst()
            }
            var quote: Character?, peak = flow
            for c in rest {
                if let q = quote { if c == q { quote = nil }; continue }
                switch c {
                case "\"", "'": quote = c
                case "[", "{": flow += 1; peak = max(peak, flow)
                case "]", "}": flow = max(0, flow - 1)
                default: continue
                }
            }
            if depth + peak > (best?.depth ?? -1) { best = (n + 1, depth + peak) }
        }
        return best
    }
}
