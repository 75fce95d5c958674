import ArgumentParser
import Foundation
import Formats
import Llama
import TensorCore
import Training

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Predict a training run's memory per category from shapes alone (no weights are loaded).")

    @Argument(help: "YAML training configuration (its model.path is read for the shape only).")
    var config: String?
    @Option(name: .customLong("set"), help: "Override one setting: section.key=value (repeatable).")
    var sets: [String] = []
    @Option(
        help:
            """
            A built-in shape instead of the config's model: \
            \(LlamaConfig.builtinShapes.keys.sorted().joined(separator: ", ")).
            """
    )
    var shape: String?
    @Option(
        help: "List the methods (with batch, sequence length and checkpointing) that fit this much memory, e.g. 4GiB.")
    var budget: String?
    @Option(
        help: """
            `leantune bench methods` JSON that ranks the methods by expected step time (e.g. the repository's \
            docs/results/bench-methods.json); without it they are ordered by memory.
            """)
    var calibration: String?

    func run() throws {
        let s: RunSettings, options: TrainingOptions
        let settings = try RunConfig.load(config, overrides: sets)
        (s, options) = (try settings.sections(), try settings.trainingOptions())
        let model: LlamaConfig
        if let shape = shape ?? s.model.shape {
            guard let s = LlamaConfig.builtinShapes[shape] else { throw ValidationError("unknown shape '\(shape)'") }
            model = s
        } else {
            guard let path = s.model.path else {
                throw ValidationError("give a config with model.path or model.shape, or --shape")
            }
            model = try ModelFile.config(path)
        }
        if let budget {
            return try plan(model, budget: budget, options: options, threads: s.train.threads)
        }
        let plan = MemoryPlan.estimate(model, options: options, threads: s.train.threads)
        print(
            """
            \(options.method.rawValue), batch \(options.batchSize) × \
            \(options.maxLength)\(options.checkpointing ? ", checkpointing" : ""): \
            \(PassBenchmark.format(count: ParameterLayout(model).parameterCount)) parameters
            """
        )
        for category in MemoryCategory.allCases where (plan[category] ?? 0) > 0 {
            print(
                "  " + category.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + PassBenchmark.format(bytes: plan[category]!))
        }
        print(
            "  " + "total".padding(toLength: 16, withPad: " ", startingAt: 0)
                + PassBenchmark.format(bytes: plan.values.reduce(0, +)))
    }

    /// The budget planner's table: what fits, fastest first, and what does not.
    func plan(_ model: LlamaConfig, budget text: String, options base: TrainingOptions, threads: Int) throws {
        let budget: Int, table: MethodBenchmarkTable?
        budget = try MemorySize.parse(text)
        table = try calibration.map(MethodBenchmarkTable.load)
        let result: BudgetPlanner.Result
        result = try BudgetPlanner.plan(
            model, budget: budget, batch: base.batchSize, seq: base.maxLength, threads: threads, calibration: table
        ) {
            entry, batch, seq, checkpointing, weights in
            try RunConfig.load(
                config,
                overrides: sets + entry.settings + [
                    "train.batch=\(batch)", "train.seq=\(seq)", "method.checkpointing=\(checkpointing)",
                ]
                    + (weights.map { ["train.weights=\($0.rawValue)"] } ?? [])
            )
            .withoutForeignMethodKeys().trainingOptions()  // the run's own method keys, where another method plans
        }
        let gib = PassBenchmark.format(bytes:)
        print(
            """
            budget \(gib(budget)) for \(PassBenchmark.format(count: ParameterLayout(model).parameterCount)) \
            parameters, asked for batch \(base.batchSize) × \(base.maxLength); each plan + \(gib(result.overhead)) for \
            the runtime (\(table == nil ? "no calibration" : "the calibration's largest RSS above its ledger"))
            """
        )
        if let table, let calibration {
            print(
                """
                expected times: \(calibration) (\(table.shape), batch \(table.batch) × \(table.seq), \(table.threads) \
                threads, \(table.machine), \(table.date)) scaled by each step's work
                """
            )
        } else {
            print(
                """
                no calibration: ordered by memory; pass --calibration FILE (a `leantune bench methods` JSON) to \
                rank by time
                """
            )
        }
        func row(_ c: BudgetPlanner.Choice) -> String {
            let d = c.dominant
            let time =
                c.expectedSeconds.map { String(format: "%8.3g s %7.0f tok/s", $0, Double(c.batch * c.seq) / $0) } ?? ""
            return "  " + c.label.padding(toLength: 13, withPad: " ", startingAt: 0)
                + "\(c.batch) × \(c.seq)".padding(toLength: 11, withPad: " ", startingAt: 0)
                + (c.checkpointing ? "on " : "off").padding(toLength: 6, withPad: " ", startingAt: 0)
                + c.weights.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                + gib(c.bytes).padding(toLength: 11, withPad: " ", startingAt: 0)
                + String(format: "%@ %.0f%%", d.category.rawValue, 100 * d.share).padding(
                    toLength: 22, withPad: " ", startingAt: 0) + time
        }
        let header =
            "  " + "method".padding(toLength: 13, withPad: " ", startingAt: 0)
            + "batch×seq  ckpt  weights  memory     largest category      " + (table == nil ? "" : "expected step")
        print(
            result.fits.isEmpty
                ? "nothing fits \(gib(budget))"
                : "fits, \(table == nil ? "smallest" : "fastest per token") first:\n" + header)
        result.fits.forEach { print(row($0)) }
        if result.fits.contains(where: \.zerothOrder) {
            print(
                """
                  (time per step, not to a result: zeroth-order methods usually need 10–100× more steps than gradient \
                methods)
                """
            )
        }
        if !result.misses.isEmpty {
            print("does not fit (the smallest choice tried):\n" + header)
            result.misses.forEach { print(row($0)) }
        }
    }
}
