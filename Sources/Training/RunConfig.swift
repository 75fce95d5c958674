import Datasets
import Foundation
import Llama
import Methods
import TensorCore
import Yams

/// A training run's configuration in YAML sections. Values are resolved in layers: the defaults of ``RunSettings``,
/// then a YAML file, then `--set section.key=value` overrides (and explicit command-line flags, which the CLI turns
/// into such overrides). Every layer is checked: an unknown key is an error with a did-you-mean, a value of the wrong
/// type names the key and the expected type. The result is read as typed sections (``sections()``) and as the
/// chosen method's `Settings`; ``trainingOptions()`` turns both into the options a ``Trainer`` runs.
public struct RunConfig: Equatable {
    /// The schema and its defaults, section → key → value, from ``RunSettings`` (the method's own keys come from its
    /// definition: ``methodKeys``).
    public static let defaults = RunSettings.schema()

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

    /// The value of section.key, as resolved.
    public subscript(_ path: String) -> Value {
        let parts = path.split(separator: ".", maxSplits: 1).map(String.init)
        return parts.count == 2 ? values[parts[0]]?[parts[1]] ?? .none : .none
    }

    /// The resolved settings as typed sections.
    public func sections() throws -> RunSettings {
        do { return try RunSettings.decode(values) } catch {
            throw TrainingError(message: "the configuration does not read as its sections: \(error)")
        }
    }

    /// The chosen method's name, as resolved.
    var methodName: String? { if case .string(let s) = self["method.name"] { s } else { nil } }

    /// The training options these settings describe (validated).
    public func trainingOptions() throws -> TrainingOptions {
        let s = try sections()
        try Self.checkRanges(s)
        var o = TrainingOptions()
        let method = try Self.choice(TrainingOptions.Method.self, s.method.name, key: "method.name", noun: "method")
        let shape = try Self.choice(LRSchedule.Shape.self, s.schedule.shape, key: "schedule.shape", noun: "schedule")
        guard let lr = s.optimizer.lr else {
            throw TrainingError(message: "optimizer.lr is required: the peak learning rate, e.g. 1e-4")
        }
        o.method = method
        o.schedule = LRSchedule(shape, peak: lr, warmup: s.schedule.warmup, total: s.schedule.steps)
        o.groups = try Self.parameterGroups(s.optimizer)
        (o.batchSize, o.accumulation, o.maxLength) = (s.train.batch, s.train.accumulate, s.train.seq)
        o.clipNorm = s.optimizer.clip.flatMap { $0 > 0 ? $0 : nil }
        o.seed = UInt64(max(0, s.train.seed))
        (o.checkpointing, o.packing, o.fused) = (s.method.checkpointing, s.data.packing, s.method.fused)
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
        o.precision = try Self.choice(Precision.self, s.train.precision, key: "train.precision", noun: "precision")
        o.weights = try Self.choice(
            TrainingOptions.Weights.self, s.train.weights, key: "train.weights", noun: "weight format")
        switch s.train.loss {
        case "lm": o.objective = .languageModel
        case "classification":
            guard let task = try Self.classificationTask(s.data) else {
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
            throw TrainingError(message: "train.loss '\(other)' is not a loss; choose lm or classification")
        }
        try o.validate()
        return o
    }

    /// Parameter groups from optimizer.weight_decay, .no_decay and .frozen (lists of groups) and .lr_scales
    /// ("group=scale" entries).
    static func parameterGroups(_ optimizer: RunSettings.Optimizer) throws -> ParameterGroups {
        func group(_ name: String, _ key: String) throws -> ParameterGroup { try Self.group(name, "optimizer." + key) }
        var scales: [ParameterGroup: Float] = [:]
        for entry in optimizer.lrScales {
            let parts = entry.split(separator: "=").map(String.init)
            guard parts.count == 2, let scale = Float(parts[1].trimmingCharacters(in: .whitespaces)), scale >= 0 else {
                throw TrainingError(
                    message: "optimizer.lr_scales: '\(entry)' must be group=scale with a scale ≥ 0, e.g. embedding=0.1")
            }
            scales[try group(parts[0], "lr_scales")] = scale
        }
        return ParameterGroups(
            weightDecay: Float(optimizer.weightDecay),
            noDecay: Set(try optimizer.noDecay.map { try group($0, "no_decay") }),
            frozen: Set(try optimizer.frozen.map { try group($0, "frozen") }),
            learningRateScale: scales)
    }

    /// The configuration without the `method:` keys that the chosen method does not read: a run's file planned
    /// with another method (`estimate --budget`).
    public func withoutForeignMethodKeys() -> RunConfig {
        var config = self
        let own = methodName.flatMap(MethodRegistry.definition(named:)).map { Set($0.settingKeys) } ?? []
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

    /// Counts, intervals and rates no run can mean (a negative interval, a learning rate ≤ 0) are refused by key, not
    /// clamped or ignored. The method-specific settings are checked where each method's options are made.
    static func checkRanges(_ s: RunSettings) throws {
        for (key, value) in [("eval.batch", s.eval.batch), ("eval.sample_tokens", s.eval.sampleTokens)] where value < 1
        {
            throw TrainingError(message: "\(key) must be at least 1, got \(value)")
        }
        guard (1...GEMM.maxThreads).contains(s.train.threads) else {
            throw TrainingError(message: "train.threads must be in 1...\(GEMM.maxThreads), got \(s.train.threads)")
        }
        for (key, value) in [
            ("schedule.warmup", s.schedule.warmup), ("eval.every", s.eval.every),
            ("eval.sample_every", s.eval.sampleEvery),
            ("checkpoint.every", s.checkpoint.every), ("checkpoint.keep", s.checkpoint.keep),
            ("train.seed", s.train.seed),
            ("data.limit", s.data.limit), ("data.skip", s.data.skip), ("data.eval_limit", s.data.evalLimit),
            ("data.eval_skip", s.data.evalSkip), ("data.sample_seed", s.data.sampleSeed),
        ] where value < 0 {
            throw TrainingError(message: "\(key) must be 0 or more, got \(value)")
        }
        // Upper bounds far beyond any run, so that sizes derived from them (sequence + 1, batch × accumulation) never
        // overflow.
        for (key, value, limit) in [
            ("train.seq", s.train.seq, LlamaConfig.sequenceLimit), ("train.batch", s.train.batch, 1 << 20),
            ("train.accumulate", s.train.accumulate, 1 << 20), ("eval.batch", s.eval.batch, 1 << 20),
            ("eval.sample_tokens", s.eval.sampleTokens, 1 << 24), ("schedule.steps", s.schedule.steps, 2_000_000_000),
        ] where value > limit {
            throw TrainingError(message: "\(key) is \(value), above the limit of \(limit)")
        }
        if let lr = s.optimizer.lr, !(lr > 0 && lr.isFinite) {
            throw TrainingError(message: "optimizer.lr must be a positive number, got \(lr)")
        }
        for (key, value) in [("optimizer.weight_decay", s.optimizer.weightDecay), ("optimizer.clip", s.optimizer.clip)]
        {
            if let v = value, !(v >= 0 && v.isFinite) {
                throw TrainingError(message: "\(key) must be 0 or more, got \(v)")
            }
        }
    }

    /// The classification task of the data settings, nil for language modelling.
    public static func classificationTask(_ data: RunSettings.Data) throws -> ClassificationTask? {
        switch data.task {
        case "lm": return nil
        case "classification":
            do {
                return try ClassificationTask(template: data.template, labelWords: data.labelWords)
            } catch let e as DataError {
                throw TrainingError(message: "\(e.file): \(e.problem)")
            }
        case let other:
            throw TrainingError(message: "data.task '\(other)' is not a task; choose lm or classification")
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
        if let method = methodName.flatMap(MethodRegistry.definition(named:)),
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
