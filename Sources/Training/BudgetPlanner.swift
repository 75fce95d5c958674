import Llama
import Methods
import TensorCore

/// Which methods fit a memory budget, with which batch, sequence length and checkpointing, and how fast each is
/// expected to run.
///
/// Memory is ``MemoryPlan`` plus the runtime's own bytes (the calibration's largest peak RSS above its ledger peak).
/// For each method the first choice that fits is taken, in the order a practitioner gives things up: the
/// sequence length last (halving it), then the batch (halving it), and before either checkpointing, then bf16
/// weights instead of fp32 master weights (where the method keeps fp32 ones), then both. Expected
/// time scales the calibration's measured step by the step's floating-point work: forward
/// 2·tokens·(matrix parameters) + 2·B·T²·D·L for causal attention; ×3 with a backward, ×4 with checkpointing.
public enum BudgetPlanner {
    public struct Choice: Sendable {
        public var label: String
        public var settings: [String]
        public var batch: Int
        public var seq: Int
        public var checkpointing: Bool
        /// What the weights are stored in.
        public var weights: TrainingOptions.WeightFormat
        /// Forward passes only (MeZO, DiZO): many more steps to a result than a gradient method.
        public var zerothOrder: Bool
        public var plan: [MemoryCategory: Int]
        /// The plan plus the runtime's own bytes: what is compared with the budget.
        public var bytes: Int
        /// Seconds per step scaled from the calibration; nil without one.
        public var expectedSeconds: Double?

        /// The largest category of the plan and its share of the plan.
        public var dominant: (category: MemoryCategory, share: Double) {
            let top = plan.max { $0.value < $1.value }!
            return (top.key, Double(top.value) / Double(plan.values.reduce(0, +)))
        }
    }

    public struct Result: Sendable {
        /// Methods that fit, fastest first (by expected seconds per token; by bytes without a calibration).
        public var fits: [Choice]
        /// Methods that do not fit even at their smallest choice, which is given.
        public var misses: [Choice]
        /// Bytes added to every plan for the runtime itself.
        public var overhead: Int
    }

    /// Plans `entries` (default: every method of `calibration`, or of ``MethodCatalog`` without one) against `budget`
    /// bytes, starting from `batch` × `seq` (and staying there when `fixedSize`); `options` builds a method's training
    /// options for a batch, length, checkpointing and (when not nil) a weight store.
    public static func plan(
        _ model: LlamaConfig, budget: Int, batch: Int, seq: Int, threads: Int, calibration: MethodBenchmarkTable?,
        entries chosen: [MethodCatalog.Entry]? = nil, fixedSize: Bool = false,
        options: (MethodCatalog.Entry, Int, Int, Bool, TrainingOptions.Weights?) throws -> TrainingOptions
    ) throws -> Result {
        let overhead = calibration.map { t in t.rows.map { max(0, $0.peakRSS - $0.ledgerPeakTotal) }.max() ?? 0 } ?? 0
        let entries =
            chosen ?? calibration.map { $0.rows.map { MethodCatalog.Entry(label: $0.label, settings: $0.settings) } }
            ?? MethodCatalog.entries
        let calibrationShape = try calibration.map { t in
            guard let shape = LlamaConfig.builtinShapes[t.shape] else {
                throw TrainingError(message: "calibration shape '\(t.shape)' is not a built-in shape")
            }
            return shape
        }
        let lengths = fixedSize ? [seq] : halvings(seq, floor: min(seq, 64)),
            batches = fixedSize ? [batch] : halvings(batch, floor: 1)
        var fits: [Choice] = [], misses: [Choice] = []
        for entry in entries {
            var smallest: Choice?
            search: for t in lengths {
                for b in batches {
                    for (checkpointing, weights) in [(false, nil), (true, nil), (false, .bf16), (true, .bf16)]
                        as [(Bool, TrainingOptions.Weights?)]
                    {
                        let plain = try options(entry, b, t, false, nil), zeroth = plain.method.isZerothOrder
                        if checkpointing && zeroth { continue }  // no activations are kept to drop
                        let base = checkpointing ? try options(entry, b, t, true, nil) : plain
                        if weights == .bf16 && base.weightFormat != .fp32 { continue }  // already bf16 or INT8
                        let o = try weights.map { try options(entry, b, t, checkpointing, $0) } ?? base
                        let plan = MemoryPlan.estimate(model, options: o, threads: threads)
                        var choice = Choice(
                            label: entry.label, settings: entry.settings, batch: b, seq: t,
                            checkpointing: checkpointing,
                            weights: o.weightFormat, zerothOrder: zeroth, plan: plan,
                            bytes: plan.values.reduce(0, +) + overhead)
                        if let calibration, let shape = calibrationShape,
                            let row = calibration.rows.first(where: { $0.label == entry.label })
                        {
                            choice.expectedSeconds =
                                row.amortizedSeconds
                                * work(model, batch: b, seq: t, checkpointing: checkpointing, backward: !zeroth)
                                / work(
                                    shape, batch: calibration.batch, seq: calibration.seq, checkpointing: false,
                                    backward: !zeroth)
                        }
                        if choice.bytes <= budget { fits.append(choice); smallest = nil; break search }
                        if smallest.map({ choice.bytes < $0.bytes }) ?? true { smallest = choice }
                    }
                }
            }
            if let smallest { misses.append(smallest) }
        }
        fits.sort { a, b in
            if let x = a.expectedSeconds, let y = b.expectedSeconds {
                return x / Double(a.batch * a.seq) < y / Double(b.batch * b.seq)
            }
            return a.bytes < b.bytes
        }
        return Result(fits: fits, misses: misses.sorted { $0.bytes < $1.bytes }, overhead: overhead)
    }

    /// n, n/2, n/4, … down to `floor`.
    static func halvings(_ n: Int, floor: Int) -> [Int] {
        Array(sequence(first: n) { $0 / 2 >= floor ? $0 / 2 : nil })
    }

    /// Floating-point work of one step, up to a constant shared by every step of the same kind.
    static func work(_ c: LlamaConfig, batch: Int, seq: Int, checkpointing: Bool, backward: Bool) -> Double {
        let matrices =
            c.layerCount * (2 * c.dim * c.queryDim + 2 * c.dim * c.kvDim + 3 * c.dim * c.ffnDim) + c.vocabSize * c.dim
        let tokens = Double(batch * seq)
        let forward =
            2 * tokens * Double(matrices) + 2 * Double(batch) * Double(seq * seq) * Double(c.queryDim * c.layerCount)
        return forward * (backward ? (checkpointing ? 4 : 3) : 1)
    }
}
