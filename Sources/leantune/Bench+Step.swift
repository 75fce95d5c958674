import ArgumentParser
import Llama
import Methods
import TensorCore
import Training

extension QFT.GradientMode: ExpressibleByArgument {}
extension ParameterGroup: ExpressibleByArgument {}
extension LSPOffload.Settings.Schedule: ExpressibleByArgument {}
extension LSPOffload.Settings.Compression: ExpressibleByArgument {}

extension Bench {
    /// One full training step of a built-in method on random weights.
    struct Step: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "One training step of a method: \(TrainingOptions.Method.allCases.map(\.rawValue).joined(separator: ", "))."
        )
        @OptionGroup var options: PassOptions
        @Option(
            help: "adamw and lion and sgd keep a full gradient slab; adamw-fused updates each tensor inside backward.")
        var method: TrainingOptions.Method = .adamw
        @Flag(help: "Keep only each layer's input and recompute the rest in backward.")
        var checkpointing = false
        @Option(
            help:
                "Weight store: auto (the method's paper: bf16 for mezo/dizo in bf16, INT8 for qft, else fp32), fp32, bf16."
        )
        var weights: TrainingOptions.Weights = .auto
        @Option(help: "qft: fused updates inside backward, or the INT8 gradient stack.")
        var gradients: QFT.GradientMode = .fused
        @Option(help: "qft: groups kept in fp32 besides the norms (embedding, head).")
        var fp32Modules: [ParameterGroup] = []
        @Flag(help: "Update each tensor inside backward (adamw, lion, sgd, galore, adarankgrad).")
        var fused = false
        @Option(help: "galore, adarankgrad: the rank (AdaRankGrad's largest).")
        var rank = 128
        @Option(help: "lsp-offload: d, the side of the compressed space.")
        var size = 256
        @Option(help: "lsp-offload: r, nonzeros per projector row.")
        var nonzeros = 4
        @Option(help: "lsp-offload: send each matrix's gradient when backward finishes it, or all after backward.")
        var schedule: LSPOffload.Settings.Schedule = .layerwise
        @Option(
            help: "lsp-offload: form the compressed gradient from the factors, or by compressing the layer's gradient.")
        var compression: LSPOffload.Settings.Compression = .factors

        func run() throws {
            var planned = TrainingOptions()
            planned.method = method
            (planned.precision, planned.weights) = (options.precision, weights)
            planned.batchSize = options.batch
            planned.maxLength = options.seq
            planned.checkpointing = checkpointing
            planned.qft.gradients = gradients
            planned.qft.weights.fp32Groups.formUnion(fp32Modules)
            planned.fused = fused
            (planned.lsp.size, planned.lsp.nonzeros, planned.lsp.schedule, planned.lsp.compression) = (
                size, nonzeros, schedule, compression
            )
            planned.lowRank.policy =
                method == .adarankgrad
                ? .adaRankGrad(maxRank: rank) : .fixed(rank: rank, interval: 200)
            // As a real run: clipping where it is possible.
            planned.clipNorm = planned.isFused || (method == .qft && gradients == .fused) ? nil : 1.0
            let label =
                "step \(method.rawValue)\(method == .qft ? " (\(gradients.rawValue) gradients)" : "")\(planned.isFused && method != .adamwFused && method != .lspOffload ? " fused" : "")\(method == .galore || method == .adarankgrad ? " rank \(rank)" : "") (checkpointing \(checkpointing ? "on" : "off"))"
            _ = try StepBenchmark.run(planned, options, label: label)
        }
    }
}

/// One method's training step timed on random weights, with its memory against the plan.
enum StepBenchmark {
    struct Result {
        var pass: PassBenchmark.Result
        /// Seconds per step of periodic work (DiZO's projection, GaLore's refresh) the timed steps do not contain.
        var periodicSeconds: Double?
        /// The memory plan (`leantune estimate`) per category.
        var estimate: [MemoryCategory: Int]
        /// Medians over the timed steps of what the method reports about its step.
        var details: [String: Double]
    }

    static func run(_ planned: TrainingOptions, _ options: PassOptions, label: String) throws -> Result {
        let method = planned.method
        let (model, batch) = try { () throws -> (LlamaModel, TokenBatch) in  // the random source is gone after this
            let (random, batch) = try PassBenchmark.setUp(options)
            return (try Trainer.model(random, for: planned), batch)
        }()
        let plan = MemoryPlan.estimate(model.config, options: planned, threads: options.threads)
        let trainingMethod = try Trainer.method(planned, model: model, stepsPerEpoch: .max)  // QFT's refresh: timed below
        // From here on: the step (QFT converted its weights from an fp32 copy, now gone).
        MemoryLedger.shared.resetPeak()
        ProcessMemory.resetPeak()
        var step = 0, guardian = NonFiniteGuard(), forward = 0.0, rest: [Double] = [], details: [[String: Double]] = []
        let inputs = StepInputs(
            batches: [batch],
            objective: {
                let start = monotonicNanoseconds()
                defer { forward += Double(monotonicNanoseconds() - start) * 1e-9 }
                return try model.loss(batch)
            }, auxiliaryObjective: { _ in try model.loss(batch) })
        let pass = PassBenchmark.report(options, model, label: label) {
            step += 1
            forward = 0
            let start = monotonicNanoseconds()
            details.append(
                try! trainingMethod.step(model, inputs: inputs, learningRate: 1e-6, step: step, nonFinite: &guardian)
                    .details)
            rest.append(Double(monotonicNanoseconds() - start) * 1e-9 - forward)
            details[details.count - 1]["step_seconds"] = Double(monotonicNanoseconds() - start) * 1e-9
        }
        let planBytes = plan.values.reduce(0, +), peak = pass.ledger.peakTotal
        print(
            String(
                format: "estimate %@ vs ledger peak %@ (%+.1f%%)", PassBenchmark.format(bytes: planBytes),
                PassBenchmark.format(bytes: peak), 100 * Double(planBytes - peak) / Double(peak)))
        let timed = details.dropFirst()  // the warm-up step is not counted, as in the timing
        func median(_ key: String) -> Double { timed.map { $0[key] ?? .nan }.sorted()[timed.count / 2] }
        var medians = Dictionary(uniqueKeysWithValues: Set(timed.flatMap(\.keys)).map { ($0, median($0)) })
        if method.isZerothOrder {  // what is not a forward pass: the perturbation and update passes
            medians["non_forward_seconds"] = rest.dropFirst().sorted()[(rest.count - 1) / 2]
            print(
                String(
                    format: "perturbation and update passes: median %.3f s per step (forward passes: the rest)",
                    medians["non_forward_seconds"]!))
        }
        var periodic: Double?  // seconds per step of work done every so many steps, which the timed steps do not contain
        if let dizo = trainingMethod as? DiZO, !dizo.projected.isEmpty {
            let start = monotonicNanoseconds()
            try dizo.project(model.store, round: 0, objective: inputs.auxiliaryObjective)
            let seconds = Double(monotonicNanoseconds() - start) * 1e-9, interval = dizo.projection.interval
            (medians["projection_seconds"], periodic) = (seconds, seconds / Double(interval))
            print(
                String(
                    format: "projection round (%d × 2 forwards) every %d steps: %.3f s, %.3f s per step",
                    dizo.projection.iterations, interval, seconds, periodic!))
        }
        if let lowRank =
            ((trainingMethod as? AccumulatedGradientMethod)?.optimizer
            ?? (trainingMethod as? FusedGradientMethod)?.optimizer) as? LowRankAdam
        {
            print(
                String(
                    format:
                        "subspace refreshes: %d in %.3f s of decompositions (the warm-up step refreshes every matrix)",
                    lowRank.refreshes, lowRank.decompositionSeconds))
            (medians["refreshes"], medians["decomposition_seconds"]) = (
                Double(lowRank.refreshes), lowRank.decompositionSeconds
            )
            if case .fixed(_, let interval) = planned.lowRank.policy, lowRank.refreshes > 0 {
                // one refresh of every matrix (the mean over those the steps made), once per interval
                periodic =
                    lowRank.decompositionSeconds * Double(lowRank.ranks.count) / Double(lowRank.refreshes)
                    / Double(interval)
                print(String(format: "a refresh of every matrix every %d steps: %.3f s per step", interval, periodic!))
            }
        }
        if method == .lspOffload {
            let computeOnly = timed.map { $0["step_seconds"]! - $0["host_wait_seconds"]! }.sorted()[timed.count / 2]
            medians["compute_only_seconds"] = computeOnly
            let lsp = planned.lsp
            print(
                String(
                    format:
                        "lsp-offload d %d r %d, %@ schedule, %@ compression: backward (compute side, compression included) %.3f s, waiting for the host %.3f s, host Adam %.3f s (overlap %.0f%%); compute-only step (step − wait) %.3f s, step / compute-only %.3f",
                    lsp.size, lsp.nonzeros, lsp.schedule.rawValue, lsp.compression.rawValue, median("compute_seconds"),
                    median("host_wait_seconds"),
                    median("host_seconds"), 100 * median("overlap"), computeOnly, median("step_seconds") / computeOnly))
            print(
                String(
                    format: "bytes per step: %.1f MiB to the host, %.1f MiB back", median("bytes_to_host") / 1048576,
                    median("bytes_to_compute") / 1048576))
        }
        if let qft = trainingMethod as? QFT {
            let start = monotonicNanoseconds()
            qft.store.refreshOutliers()
            medians["outlier_refresh_seconds"] = Double(monotonicNanoseconds() - start) * 1e-9
            print(
                String(
                    format: "outlier refresh of every matrix (once per epoch by default): %.3f s",
                    medians["outlier_refresh_seconds"]!))
        }
        return Result(pass: pass, periodicSeconds: periodic, estimate: plan, details: medians)
    }
}
