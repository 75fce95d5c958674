import Foundation
import Yams

/// A run's configuration as typed sections: the schema of the YAML file (each property is a key, in snake case, with
/// its default) and what the code reads. `RunConfig` layers the sources as keys and values; ``RunConfig/sections()``
/// decodes them into this with Yams. The chosen method's own `method:` keys are its definition's `Settings`.
public struct RunSettings: Codable, Equatable, Sendable {
    public struct Model: Codable, Equatable, Sendable {
        /// A Hugging Face directory, a GGUF file or a llama2.c checkpoint; or a built-in `shape` to train from scratch.
        public var path: String?, tokenizer: String?, shape: String?
    }
    public struct Data: Codable, Equatable, Sendable {
        public var train: String?, eval: String?
        public var packing = false
        /// lm, or classification with a template and a label word per class.
        public var task = "lm", template = "{text}"
        public var labelWords: [String] = []
        public var limit = 0, skip = 0, evalLimit = 0, evalSkip = 0, sampleSeed = 0
        /// fail or skip on an invalid record.
        public var onError = "fail"
    }
    /// The keys every method shares; its own are its definition's `Settings`.
    public struct Method: Codable, Equatable, Sendable {
        public var name = "adamw"
        public var checkpointing = false, fused = false
    }
    public struct Optimizer: Codable, Equatable, Sendable {
        public var lr: Double? = 1e-4
        public var weightDecay = 0.0
        /// The global gradient-norm clip; none or 0 for none.
        public var clip: Double? = 1.0
        public var noDecay = ["norms"], frozen: [String] = [], lrScales: [String] = []
    }
    public struct Schedule: Codable, Equatable, Sendable {
        public var shape = "cosine"
        public var warmup = 0, steps = 100
    }
    public struct Train: Codable, Equatable, Sendable {
        public var batch = 4, accumulate = 1, seq = 256, seed = 0, threads = 2
        public var loss = "lm", precision = "fp32", weights = "auto"
    }
    public struct Eval: Codable, Equatable, Sendable {
        public var every = 0, batch = 16, sampleEvery = 0
        public var samplePrompts: [String] = []
        public var sampleTokens = 48
    }
    public struct Checkpoint: Codable, Equatable, Sendable {
        public var every = 0, keep = 3
    }
    public struct Logging: Codable, Equatable, Sendable {
        public var output: String?
    }

    public var model = Model(), data = Data(), method = Method(), optimizer = Optimizer()
    public var schedule = Schedule(), train = Train(), eval = Eval(), checkpoint = Checkpoint(), logging = Logging()

    public init() {}

    /// `value`, the setting `key`, which a run needs.
    public static func required(_ value: String?, _ key: String) throws -> String {
        guard let value, !value.isEmpty else {
            throw TrainingError(message: "'\(key)' is required (set it in the config or with --set \(key)=…)")
        }
        return value
    }

    /// Section → key → default, the keys in snake case: the schema `RunConfig` checks every layer against.
    static func schema() -> [String: [String: RunConfig.Value]] {
        var out: [String: [String: RunConfig.Value]] = [:]
        for section in Mirror(reflecting: RunSettings()).children {
            guard let name = section.label else { continue }
            for key in Mirror(reflecting: section.value).children {
                guard let field = key.label, let value = defaultValue(key.value) else { continue }
                out[snakeCase(name), default: [:]][snakeCase(field)] = value
            }
        }
        return out
    }

    /// A property's default as a configuration value; nil for a type the schema has no value for.
    static func defaultValue(_ value: Any) -> RunConfig.Value? {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            return mirror.children.first.map { defaultValue($0.value) } ?? RunConfig.Value.none
        }
        return RunConfig.Value(loaded: value)
    }

    static func snakeCase(_ name: String) -> String {
        name.reduce(into: "") { key, c in key += c.isUppercase ? "_" + c.lowercased() : String(c) }
    }

    static func camelCase(_ key: String) -> String {
        let parts = key.split(separator: "_")
        return (parts.first.map(String.init) ?? "")
            + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }
            .joined()
    }

    /// `values` (section → key → value, as `RunConfig` resolved them) decoded into sections.
    static func decode(_ values: [String: [String: RunConfig.Value]]) throws -> RunSettings {
        let sections = schema()
        var pairs: [(Node, Node)] = []
        for (section, keys) in values.sorted(by: { $0.key < $1.key }) {
            guard let known = sections[section] else { continue }
            // A key set to none is left out: its optional property decodes as nil.
            let fields = keys.filter { known[$0.key] != nil && $0.value != .none }.sorted { $0.key < $1.key }.map {
                key, value in
                (Node(camelCase(key)), value.node)
            }
            pairs.append((Node(camelCase(section)), Node(fields)))
        }
        return try YAMLDecoder().decode(RunSettings.self, from: Node(pairs))
    }
}

extension RunConfig.Value {
    /// The value as a YAML node (strings tagged as strings, so that "1" stays text).
    var node: Node {
        switch self {
        case .string(let s): Node(s, Tag(.str))
        case .strings(let list): Node(list.map { Node($0, Tag(.str)) })
        case .none: Node("null", Tag(.null))
        default: Node(description)
        }
    }
}
