import Datasets
import Foundation
import Llama
import Methods
import TensorCore
import Yams

/// A training run's configuration in YAML sections. Values are resolved in layers: the defaults below,
/// then a YAML file, then `--set section.key=value` overrides (and explicit command-line flags, which
/// the CLI turns into such overrides). Every layer is checked: an unknown key is an error with a
/// did-you-mean, a value of the wrong type names the key and the expected type.
public struct RunConfig: Equatable {
    /// The schema and its defaults: section → key → value (String, Int, Double, Bool, or nil for "none").
    public static let defaults: [String: [String: Value]] = [
        "model": ["path": .none, "tokenizer": .none, "shape": .none],
        "data": [
            "train": .none, "eval": .none, "packing": .bool(false), "task": .string("lm"),
            "template": .string("{text}"),
            "label_words": .strings([]), "limit": .int(0), "skip": .int(0), "eval_limit": .int(0), "eval_skip": .int(0),
            "sample_seed": .int(0), "on_error": .string("fail"),
        ],
        // The keys every method shares; each method's own keys are its definition's Settings (``methodKeys``).
        "method": ["name": .string("adamw"), "checkpointing": .bool(false), "fused": .bool(false)],
        "optimizer": [
            "lr": .double(1e-4), "weight_decay": .double(0), "clip": .double(1.0), "no_decay": .strings(["norms"]),
            "frozen": .strings([]), "lr_scales": .strings([]),
        ],
        "schedule": ["shape": .string("cosine"), "warmup": .int(0), "steps": .int(100)],
        "train": [
            "batch": .int(4), "accumulate": .int(1), "seq": .int(256), "seed": .int(0), "threads": .int(2),
            "loss": .string("lm"),
            "precision": .string("fp32"), "weights": .string("auto"),
        ],
        "eval": [
            "every": .int(0), "batch": .int(16), "sample_every": .int(0), "sample_prompts": .strings([]),
            "sample_tokens": .int(48),
        ],
        "checkpoint": ["every": .int(0), "keep": .int(3)],
        "logging": ["output": .none],
    ]

    /// A configuration value.
    public enum Value: Equatable, Sendable, CustomStringConvertible {
        case string(String), int(Int), double(Double), bool(Bool), strings([String]), none

        /// A value as YAML or the command line gives it, by its own type.
        init?(loaded: Any) {
            switch loaded {
            case is NSNull: self = .none
            case let b as Bool: self = .bool(b)
            case let i as Int: self = .int(i)
            case let d as Double: self = .double(d)
            case let s as String: self = .string(s)
            case let list as [Any]:
                guard let strings = list as? [String] else { return nil }
                self = .strings(strings)
            default: return nil
            }
        }

        public var description: String {
            switch self {
            case .string(let s): s
            case .int(let i): "\(i)"
            case .double(let d): "\(d)"
            case .bool(let b): "\(b)"
            case .strings(let list): "\(list)"
            case .none: "none"
            }
        }
    }

    /// Every registered method's own `method:` keys.
    public static let methodKeys = Set(MethodRegistry.all.flatMap { $0.settingKeys })

    public private(set) var values: [String: [String: Value]] = RunConfig.defaults

    public init() {}

    /// Defaults, then `yaml` (from `file`, for messages), then each "section.key=value" of `overrides`, then
    /// `explicit` typed values (command-line flags).
    public static func resolve(
        yaml: String?, file: String = "config", overrides: [String] = [],
        explicit: [(path: String, value: Any)] = []
    ) throws -> RunConfig {
        var config = RunConfig()
        if let yaml {
            for (section, keys) in try ConfigYAML.sections(yaml, file: file) {
                for (key, value) in keys { try config.set("\(section).\(key)", yamlValue: value, source: file) }
            }
        }
        for override in overrides {
            guard let eq = override.firstIndex(of: "=") else {
                throw TrainingError(message: "--set \(override): expected section.key=value")
            }
            let path = String(override[..<eq]), text = String(override[override.index(after: eq)...])
            try config.set(path, yamlValue: ConfigYAML.value(text) ?? text, source: "--set")
        }
        for (path, value) in explicit { try config.set(path, yamlValue: value, source: "command line") }
        return config
    }

    /// Resolves the YAML file at `path` (or defaults only when nil) with `overrides` and `explicit` values.
    public static func load(
        _ path: String?, overrides: [String] = [], explicit: [(path: String, value: Any)] = []
    ) throws -> RunConfig {
        let yaml = try path.map { p -> String in
            guard let data = FileManager.default.contents(atPath: p) else {
                throw TrainingError(message: "\(p): cannot read the configuration")
            }
            return String(decoding: data, as: UTF8.self)
        }
        return try resolve(yaml: yaml, file: path ?? "config", overrides: overrides, explicit: explicit)
    }

    /// Sets `path` (section.key) from a parsed YAML value, checking the key and the type.
    mutating func set(_ path: String, yamlValue: Any?, source: String) throws {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        let raw: Any? = yamlValue.flatMap { $0 is NSNull ? nil : $0 }
        if parts.count == 2, parts[0] == "method", Self.methodKeys.contains(parts[1]) {  // typed by the method
            guard let value = raw.map(Value.init(loaded:)) ?? Value.none else {
                throw TrainingError(
                    message: "\(source): '\(path)' must be a number, text, true/false or a list of strings")
            }
            values["method", default: [:]][parts[1]] = value
            return
        }
        guard parts.count == 2, let current = Self.defaults[parts[0]]?[parts[1]] else {
            let suggestion = Self.closestKey(to: path).map { "; did you mean '\($0)'?" } ?? ""
            throw TrainingError(message: "\(source): unknown key '\(path)'\(suggestion)")
        }
        let value: Value? =
            switch (current, raw) {
            case (_, nil): Value.none
            case (.string, let s as String), (.none, let s as String): .string(s)
            case (.bool, let b as Bool): .bool(b)
            case (.int, let i as Int): .int(i)
            case (.double, let d as Double): .double(d)
            case (.double, let i as Int): .double(Double(i))
            case (.double, let s as String) where s == "none": Value.none
            case (.strings, let list as [Any]): list.allSatisfy { $0 is String } ? .strings(list as! [String]) : nil
            case (.strings, let s as String): .strings([s])
            default: nil
            }
        guard let value else {
            throw TrainingError(
                message: "\(source): '\(path)' must be \(Self.typeName(current)), got \(raw.map { "\($0)" } ?? "null")")
        }
        values[parts[0], default: [:]][parts[1]] = value
    }

    static func typeName(_ v: Value) -> String {
        switch v {
        case .string, .none: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "true or false"
        case .strings: "a list of strings"
        }
    }

    /// The known key nearest to `path` by edit distance, if it is close.
    static func closestKey(to path: String) -> String? {
        closest(
            to: path,
            among: defaults.flatMap { s, keys in keys.keys.map { "\(s).\($0)" } } + methodKeys.map { "method.\($0)" })
    }

    /// The candidate nearest to `text` by edit distance, if it is close.
    static func closest(to text: String, among candidates: [String]) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(1, a.count) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in 1...max(1, b.count) where !b.isEmpty {
                    let old = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = old
                }
            }
            return row[b.count]
        }
        var best: (key: String, distance: Int)?
        for key in candidates.sorted() {
            let d = distance(key, text)
            if best == nil || d < best!.distance { best = (key, d) }
        }
        guard let best, best.distance <= max(2, text.count / 3) else { return nil }
        return best.key
    }

    public subscript(_ path: String) -> Value {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        return values[parts[0]]?[parts[1]] ?? .none
    }

    public func string(_ path: String) -> String? { if case .string(let s) = self[path] { s } else { nil } }
    public func int(_ path: String) -> Int { if case .int(let i) = self[path] { i } else { 0 } }
    public func double(_ path: String) -> Double? { if case .double(let d) = self[path] { d } else { nil } }
    public func bool(_ path: String) -> Bool { if case .bool(let b) = self[path] { b } else { false } }
    public func strings(_ path: String) -> [String] { if case .strings(let list) = self[path] { list } else { [] } }

    /// A required string setting.
    public func required(_ path: String) throws -> String {
        guard let s = string(path), !s.isEmpty else {
            throw TrainingError(message: "'\(path)' is required (set it in the config or with --set \(path)=…)")
        }
        return s
    }

    /// The training options these settings describe (validated).
    public func trainingOptions() throws -> TrainingOptions {
        try checkRanges()
        var o = TrainingOptions()
        let method = try Self.choice(
            TrainingOptions.Method.self, string("method.name") ?? "", key: "method.name", noun: "method")
        let shapeName = string("schedule.shape") ?? ""
        let shape = try RunConfig.choice(LRSchedule.Shape.self, shapeName, key: "schedule.shape", noun: "schedule")
        o.method = method
        o.schedule = LRSchedule(
            shape, peak: double("optimizer.lr") ?? 0, warmup: int("schedule.warmup"), total: int("schedule.steps"))
        o.groups = try parameterGroups()
        o.batchSize = int("train.batch")
        o.accumulation = int("train.accumulate")
        o.maxLength = int("train.seq")
        o.clipNorm = double("optimizer.clip").flatMap { $0 > 0 ? $0 : nil }
        o.seed = UInt64(max(0, int("train.seed")))
        o.checkpointing = bool("method.checkpointing")
        o.packing = bool("data.packing")
        o.fused = bool("method.fused")
        try method.definition.configure(methodEntries, into: &o)
        if o.checkpointing, method.isZerothOrder {
            throw TrainingError(
                message:
                    """
                    method.checkpointing does not apply to \(method.rawValue): it runs forward passes only and keeps \
                    no activations to drop
                    """
            )
        }
        if o.fused, method.definition.fusion == .never {
            throw TrainingError(message: "method.fused does not apply to \(method.rawValue)")
        }
        let precision = string("train.precision") ?? "", weights = string("train.weights") ?? ""
        let p = try RunConfig.choice(Precision.self, precision, key: "train.precision", noun: "precision")
        let w = try RunConfig.choice(TrainingOptions.Weights.self, weights, key: "train.weights", noun: "weight format")
        (o.precision, o.weights) = (p, w)
        switch string("train.loss") {
        case "lm": o.objective = .languageModel
        case "classification":
            guard let task = try classificationTask() else {
                throw TrainingError(
                    message:
                        """
                        train.loss: classification needs data.task: classification (with data.template and \
                        data.label_words)
                        """
                )
            }
            o.objective = .classification(classes: task.labelWords.count)
        case let other:
            throw TrainingError(message: "train.loss '\(other ?? "none")' is not a loss; choose lm or classification")
        }
        try o.validate()
        return o
    }

    /// Parameter groups from optimizer.weight_decay, .no_decay and .frozen (lists of groups) and .lr_scales
    /// ("group=scale" entries).
    func parameterGroups() throws -> ParameterGroups {
        func group(_ name: String, _ key: String) throws -> ParameterGroup { try Self.group(name, "optimizer." + key) }
        var scales: [ParameterGroup: Float] = [:]
        for entry in strings("optimizer.lr_scales") {
            let parts = entry.split(separator: "=").map(String.init)
            guard parts.count == 2, let scale = Float(parts[1].trimmingCharacters(in: .whitespaces)), scale >= 0 else {
                throw TrainingError(
                    message: "optimizer.lr_scales: '\(entry)' must be group=scale with a scale ≥ 0, e.g. embedding=0.1")
            }
            scales[try group(parts[0], "lr_scales")] = scale
        }
        return ParameterGroups(
            weightDecay: Float(double("optimizer.weight_decay") ?? 0),
            noDecay: Set(try strings("optimizer.no_decay").map { try group($0, "no_decay") }),
            frozen: Set(try strings("optimizer.frozen").map { try group($0, "frozen") }),
            learningRateScale: scales)
    }

    /// The configuration without the `method:` keys that the chosen method does not read: a run's file planned
    /// with another method (`estimate --budget`).
    public func withoutForeignMethodKeys() -> RunConfig {
        var config = self
        let own = string("method.name").flatMap(MethodRegistry.definition(named:)).map { Set($0.settingKeys) } ?? []
        for key in methodEntries.keys where !own.contains(key) { config.values["method"]?[key] = nil }
        return config
    }

    /// The case of `type` named `raw`, the value of setting `key`; else an error listing the choices.
    static func choice<Choice: CaseIterable & RawRepresentable<String>>(
        _ type: Choice.Type, _ raw: String, key: String, noun: String
    ) throws -> Choice {
        guard let choice = Choice(rawValue: raw) else {
            let article = "aeiou".contains(noun.first ?? " ") ? "an" : "a"
            throw TrainingError(
                message:
                    """
                    \(key) '\(raw)' is not \(article) \(noun); choose one of \
                    \(Choice.allCases.map(\.rawValue).joined(separator: ", "))
                    """
            )
        }
        return choice
    }

    /// The keys of the `method:` section that the chosen method reads (all but the shared ones).
    var methodEntries: [String: Value] {
        (values["method"] ?? [:]).filter { Self.defaults["method"]?[$0.key] == nil }
    }

    /// The parameter group `name` given at setting `key`.
    static func group(_ name: String, _ key: String) throws -> ParameterGroup {
        guard let g = ParameterGroup(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
            throw TrainingError(
                message:
                    """
                    \(key): '\(name)' is not a parameter group; choose from \
                    \(ParameterGroup.allCases.map(\.rawValue).joined(separator: ", "))
                    """
            )
        }
        return g
    }

    /// The classification task of the data settings, nil for language modelling.
    /// Counts, intervals and rates no run can mean (a negative interval, a learning rate ≤ 0) are refused by key, not
    /// clamped or ignored. The method-specific settings are checked where each method's options are made.
    func checkRanges() throws {
        for key in ["eval.batch", "eval.sample_tokens"] where int(key) < 1 {
            throw TrainingError(message: "\(key) must be at least 1, got \(int(key))")
        }
        guard (1...GEMM.maxThreads).contains(int("train.threads")) else {
            throw TrainingError(message: "train.threads must be in 1...\(GEMM.maxThreads), got \(int("train.threads"))")
        }
        for key in [
            "schedule.warmup", "eval.every", "eval.sample_every", "checkpoint.every", "checkpoint.keep", "train.seed",
            "data.limit", "data.skip", "data.eval_limit", "data.eval_skip", "data.sample_seed",
        ] where int(key) < 0 {
            throw TrainingError(message: "\(key) must be 0 or more, got \(int(key))")
        }
        // Upper bounds far beyond any run, so that sizes derived from them (sequence + 1, batch × accumulation) never
        // overflow.
        for (key, limit) in [
            ("train.seq", LlamaConfig.sequenceLimit), ("train.batch", 1 << 20), ("train.accumulate", 1 << 20),
            ("eval.batch", 1 << 20),
            ("eval.sample_tokens", 1 << 24), ("schedule.steps", 2_000_000_000),
        ] where int(key) > limit {
            throw TrainingError(message: "\(key) is \(int(key)), above the limit of \(limit)")
        }
        if let lr = double("optimizer.lr"), !(lr > 0 && lr.isFinite) {
            throw TrainingError(message: "optimizer.lr must be a positive number, got \(lr)")
        }
        for key in ["optimizer.weight_decay", "optimizer.clip"] {
            if let v = double(key), !(v >= 0 && v.isFinite) {
                throw TrainingError(message: "\(key) must be 0 or more, got \(v)")
            }
        }
    }

    public func classificationTask() throws -> ClassificationTask? {
        switch string("data.task") {
        case "lm": return nil
        case "classification":
            do {
                return try ClassificationTask(
                    template: string("data.template") ?? "", labelWords: strings("data.label_words"))
            } catch let e as DataError {
                throw TrainingError(message: "\(e.file): \(e.problem)")
            }
        case let other:
            throw TrainingError(message: "data.task '\(other ?? "none")' is not a task; choose lm or classification")
        }
    }

    /// A string as a YAML scalar (quoted when plain YAML would change it, e.g. a leading space).
    static func quoted(_ s: String) -> String {
        let plain = (try? Yams.dump(object: s).trimmingCharacters(in: .whitespacesAndNewlines)) ?? s
        return s.first == " " || s.last == " " ? "'" + s.replacingOccurrences(of: "'", with: "''") + "'" : plain
    }

    /// The resolved configuration as YAML (sections and keys sorted; "none" for unset).
    public var yaml: String {
        var values = values
        if let method = string("method.name").flatMap(MethodRegistry.definition(named:)),
            let resolved = try? method.resolved(methodEntries)
        {
            values["method", default: [:]].merge(resolved) { _, new in new }  // with the method's defaults
        }
        return values.keys.sorted().map { section in
            "\(section):\n"
                + values[section]!.keys.sorted().map { key in
                    let v = values[section]![key]!
                    let text: String =
                        switch v {
                        case .string(let s): Self.quoted(s)
                        case .strings(let list): "[" + list.map(Self.quoted).joined(separator: ", ") + "]"
                        case .none: "null"
                        default: v.description
                        }
                    return "  \(key): \(text)\n"
                }.joined()
        }.joined()
    }
}
