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
    private static let adaptive = LowRankAdam.Settings.Policy.adaptiveDefaults

    /// The schema and its defaults: section → key → value (String, Int, Double, Bool, or nil for "none").
    public static let defaults: [String: [String: Value]] = [
        "model": ["path": .none, "tokenizer": .none, "shape": .none],
        "data": [
            "train": .none, "eval": .none, "packing": .bool(false), "task": .string("lm"),
            "template": .string("{text}"),
            "label_words": .strings([]), "limit": .int(0), "skip": .int(0), "eval_limit": .int(0), "eval_skip": .int(0),
            "sample_seed": .int(0), "on_error": .string("fail"),
        ],
        "method": [
            "name": .string("adamw"), "checkpointing": .bool(false), "epsilon": .double(1e-3), "perturbations": .int(1),
            "projected": .string("kv"), "interval": .int(50), "iterations": .int(10), "clip_range": .double(0.2),
            "projection_epsilon": .double(0.1), "projection_step": .double(2.0),
            "outlier_fraction": .double(0.01), "weight_block": .int(0), "state_block": .int(128),
            "gradients": .string("fused"),
            "outlier_refresh": .int(0), "fp32_modules": .strings(["norms"]), "fused": .bool(false),
            "rank": .int(128), "update_interval": .int(200), "scale": .double(0.25), "svd": .string("randomized"),
            "transfer_moments": .bool(false), "min_rank": .int(adaptive.minRank),
            "energy": .double(adaptive.energy), "capture": .double(adaptive.capture),
            "min_interval": .int(adaptive.minInterval), "size": .int(256), "nonzeros": .int(4),
            "schedule": .string("layerwise"),
            "compression": .string("factors"), "train_embeddings": .bool(false), "check_frequency": .int(200),
            "held_out_batches": .int(2), "fit_iterations": .int(10), "fit_lr": .double(0.1),
            "refit_threshold": .double(0.5),
        ],
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
        guard parts.count == 2, let current = Self.defaults[parts[0]]?[parts[1]] else {
            let suggestion = Self.closestKey(to: path).map { "; did you mean '\($0)'?" } ?? ""
            throw TrainingError(message: "\(source): unknown key '\(path)'\(suggestion)")
        }
        let raw: Any? = yamlValue.flatMap { $0 is NSNull ? nil : $0 }
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
        let all = defaults.flatMap { s, keys in keys.keys.map { "\(s).\($0)" } }
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
        for key in all.sorted() {
            let d = distance(key, path)
            if best == nil || d < best!.distance { best = (key, d) }
        }
        guard let best, best.distance <= max(2, path.count / 3) else { return nil }
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
        let methodName = string("method.name") ?? ""
        guard let method = TrainingOptions.Method(rawValue: methodName) else {
            throw TrainingError(
                message:
                    "method.name '\(methodName)' is not a method; choose one of \(TrainingOptions.Method.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        let shapeName = string("schedule.shape") ?? ""
        guard let shape = LRSchedule.Shape(rawValue: shapeName) else {
            throw TrainingError(
                message:
                    "schedule.shape '\(shapeName)' is not a schedule; choose one of \(LRSchedule.Shape.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
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
        o.zerothOrder.epsilon = Float(double("method.epsilon") ?? 0)
        o.zerothOrder.perturbations = int("method.perturbations")
        let projected = string("method.projected") ?? ""
        guard let set = DiZO.ProjectedSet(rawValue: projected) else {
            throw TrainingError(
                message:
                    "method.projected '\(projected)' is not a projected set; choose one of \(DiZO.ProjectedSet.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        o.zerothOrder.projection.set = set
        o.zerothOrder.projection.interval = int("method.interval")
        o.zerothOrder.projection.iterations = int("method.iterations")
        o.zerothOrder.projection.clip = Float(double("method.clip_range") ?? 0)
        o.zerothOrder.projection.epsilon = Float(double("method.projection_epsilon") ?? 0)
        o.zerothOrder.projection.stepSize = Float(double("method.projection_step") ?? 0)
        o.qft.weights.outlierFraction = double("method.outlier_fraction") ?? -1
        o.qft.weights.blockSize = int("method.weight_block")
        o.qft.stateBlock = int("method.state_block")
        o.qft.refreshInterval = int("method.outlier_refresh")
        let gradients = string("method.gradients") ?? ""
        guard let mode = QFT.GradientMode(rawValue: gradients) else {
            throw TrainingError(
                message:
                    "method.gradients '\(gradients)' is not a gradient mode; choose one of \(QFT.GradientMode.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        o.qft.gradients = mode
        o.qft.weights.fp32Groups = Set(try strings("method.fp32_modules").map { try group($0, "method.fp32_modules") })
            .union([.norms])
        o.fused = bool("method.fused")
        let rank = int("method.rank"), interval = int("method.update_interval")
        o.lowRank.policy =
            method == .adarankgrad
            ? .adaptive(
                minRank: int("method.min_rank"), maxRank: rank, energy: Float(double("method.energy") ?? -1),
                capture: Float(double("method.capture") ?? -1), minInterval: int("method.min_interval"),
                maxInterval: interval)
            : .fixed(rank: rank, interval: interval)
        o.lowRank.scale = Float(double("method.scale") ?? -1)
        o.lowRank.transferMoments = bool("method.transfer_moments")
        let svd = string("method.svd") ?? ""
        guard let decomposition = LowRankAdam.Settings.Decomposition(rawValue: svd) else {
            throw TrainingError(
                message:
                    "method.svd '\(svd)' is not a decomposition; choose one of \(LowRankAdam.Settings.Decomposition.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        o.lowRank.decomposition = decomposition
        o.lsp.size = int("method.size")
        o.lsp.nonzeros = int("method.nonzeros")
        o.lsp.trainEmbeddings = bool("method.train_embeddings")
        (o.lsp.checkFrequency, o.lsp.heldOutBatches, o.lsp.fitIterations) = (
            int("method.check_frequency"), int("method.held_out_batches"), int("method.fit_iterations")
        )
        (o.lsp.fitLearningRate, o.lsp.refitThreshold) = (
            Float(double("method.fit_lr") ?? -1), double("method.refit_threshold") ?? -1
        )
        let schedule = string("method.schedule") ?? "", compression = string("method.compression") ?? ""
        guard let s = LSPOffload.Settings.Schedule(rawValue: schedule) else {
            throw TrainingError(
                message:
                    "method.schedule '\(schedule)' is not a schedule; choose one of \(LSPOffload.Settings.Schedule.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let c = LSPOffload.Settings.Compression(rawValue: compression) else {
            throw TrainingError(
                message:
                    "method.compression '\(compression)' is not a compression; choose one of \(LSPOffload.Settings.Compression.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        (o.lsp.schedule, o.lsp.compression) = (s, c)
        let precision = string("train.precision") ?? "", weights = string("train.weights") ?? ""
        guard let p = Precision(rawValue: precision) else {
            throw TrainingError(
                message:
                    "train.precision '\(precision)' is not a precision; choose one of \(Precision.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        guard let w = TrainingOptions.Weights(rawValue: weights) else {
            throw TrainingError(
                message:
                    "train.weights '\(weights)' is not a weight format; choose one of \(TrainingOptions.Weights.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        (o.precision, o.weights) = (p, w)
        switch string("train.loss") {
        case "lm": o.objective = .languageModel
        case "classification":
            guard let task = try classificationTask() else {
                throw TrainingError(
                    message:
                        "train.loss: classification needs data.task: classification (with data.template and data.label_words)"
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
        func group(_ name: String, _ key: String) throws -> ParameterGroup { try self.group(name, "optimizer." + key) }
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

    /// The parameter group `name` given at setting `key`.
    func group(_ name: String, _ key: String) throws -> ParameterGroup {
        guard let g = ParameterGroup(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
            throw TrainingError(
                message:
                    "\(key): '\(name)' is not a parameter group; choose from \(ParameterGroup.allCases.map(\.rawValue).joined(separator: ", "))"
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
        // Upper bounds far beyond any run, so that sizes derived from them (sequence + 1, batch × accumulation) never overflow.
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
        values.keys.sorted().map { section in
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
