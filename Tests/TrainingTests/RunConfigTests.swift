import Testing
import Methods
@testable import Training

@Suite("Run configuration")
struct RunConfigTests {
    static let yaml = """
        model:
          path: m.gguf
        data:
          train: d.jsonl
        optimizer:
          lr: 3.0e-4
        schedule:
          steps: 50
        logging:
          output: out
        """

    @Test("defaults, then the file, then --set, then flags")
    func layering() throws {
        let c = try RunConfig.resolve(
            yaml: Self.yaml, overrides: ["schedule.steps=70", "train.batch=8"],
            explicit: [("train.batch", 16)])
        let s = try c.sections()
        #expect(s.optimizer.lr == 3e-4)  // file over default
        #expect(s.schedule.steps == 70)  // --set over file
        #expect(s.train.batch == 16)  // flag over --set
        #expect(s.train.seq == 256)  // default
        let options = try c.trainingOptions()
        #expect(options.schedule.total == 70 && options.batchSize == 16 && options.clipNorm == 1.0)
    }

    @Test("the schema is RunSettings': defaults decode to its defaults, and every key set reaches its typed property")
    func typedSections() throws {
        #expect(try RunConfig().sections() == RunSettings())
        #expect(
            RunConfig.defaults["data"]?["label_words"] == .strings([])
                && RunConfig.defaults["model"]?["path"] == RunConfig.Value.none)
        let c = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "data.eval_limit=7", "eval.sample_prompts=[a, b]", "optimizer.clip=none", "train.precision=bf16",
                "checkpoint.keep=1", "data.on_error=skip", "method.fused=true",
            ])
        let s = try c.sections()
        #expect(s.model.path == "m.gguf" && s.data.train == "d.jsonl" && s.logging.output == "out")
        #expect(s.data.evalLimit == 7 && s.eval.samplePrompts == ["a", "b"] && s.optimizer.clip == nil)
        #expect(s.train.precision == "bf16" && s.checkpoint.keep == 1 && s.data.onError == "skip" && s.method.fused)
    }

    @Test("the resolved YAML reads back to the same configuration")
    func roundTrip() throws {
        let c = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "data.eval=e.jsonl", "optimizer.clip=0", "data.task=classification",
                "data.label_words=[' terrible', ' great']", "optimizer.frozen=[embedding]",
            ])
        #expect(try RunConfig.resolve(yaml: c.yaml) == c)
        #expect(try c.sections().data.labelWords == [" terrible", " great"])
    }

    @Test(
        "unknown keys are refused with a did-you-mean, wrong types name the key",
        arguments: [
            ("optimzer.lr=1", "did you mean 'optimizer.lr'?"),
            ("train.batchsize=2", "did you mean 'train.batch'?"),
            ("train.batch=four", "'train.batch' must be an integer"),
            ("method.checkpointing=maybe", "'method.checkpointing' must be true or false"),
            ("nonsense", "expected section.key=value"),
        ])
    func refusals(override: String, message: String) {
        #expect(throws: TrainingError.self) { try RunConfig.resolve(yaml: Self.yaml, overrides: [override]) }
        do { _ = try RunConfig.resolve(yaml: Self.yaml, overrides: [override]) } catch let e as TrainingError {
            #expect(e.message.contains(message), "\(e.message)")
        } catch {}
    }

    @Test("bad values and missing settings are refused with the fix")
    func values() throws {
        let bad = try RunConfig.resolve(yaml: Self.yaml, overrides: ["method.name=adam"])
        #expect(throws: TrainingError.self) { try bad.trainingOptions() }
        let fusedWithClip = try RunConfig.resolve(yaml: Self.yaml, overrides: ["method.name=adamw-fused"])
        #expect(throws: TrainingError.self) { try fusedWithClip.trainingOptions() }
        #expect(
            try RunConfig.resolve(yaml: Self.yaml, overrides: ["method.name=adamw-fused", "optimizer.clip=0"])
                .trainingOptions().method == .adamwFused)
        #expect(throws: TrainingError.self) {
            try RunSettings.required(RunConfig.resolve(yaml: nil).sections().model.path, "model.path")
        }
        #expect(throws: TrainingError.self) { try RunConfig.resolve(yaml: "- a\n- b") }
    }

    @Test(
        "settings out of range are refused by key: negative intervals and counts, rates ≤ 0, sizes that would overflow",
        arguments: [
            ("train.threads=0", "train.threads must be in 1...1024, got 0"),
            ("checkpoint.every=-1", "checkpoint.every must be 0 or more"),
            ("data.skip=-2", "data.skip must be 0 or more"),
            ("optimizer.lr=-1e-3", "optimizer.lr must be a positive number"),
            ("optimizer.weight_decay=-0.1", "optimizer.weight_decay must be 0 or more"),
            ("train.seq=9223372036854775807", "train.seq is 9223372036854775807, above the limit of 16777216"),
            ("train.accumulate=9223372036854775807", "train.accumulate is 9223372036854775807, above the limit"),
            ("schedule.steps=9223372036854775807", "schedule.steps is 9223372036854775807, above the limit"),
        ])
    func ranges(override: String, message: String) throws {
        let e = try #require(throws: TrainingError.self) {
            try RunConfig.resolve(yaml: Self.yaml, overrides: [override]).trainingOptions()
        }
        #expect(e.message.contains(message), "\(e.message)")
    }

    @Test(
        "YAML the configuration cannot mean is refused by line: complex keys, repeats, nesting, deep or huge text",
        arguments: [
            ("schedule:\n  ? warmup: 20\n  steps: 5\n", "a key of section 'schedule' must be plain text (line 2)"),
            ("train:\n  batch: 2\ntrain:\n  seq: 64\n", "duplicated key(s): 'train'"),
            ("train:\n  batch: 2\n  batch: 4\n", "duplicated key(s): 'batch'"),
            ("optimizer:\n  lr: {a: 1}\n", "'optimizer.lr' must be a value or a list of values"),
            ("data:\n  label_words: [[a], b]\n", "'data.label_words' must be a value or a list of values"),
            (
                "train:\n  batch: " + String(repeating: "[", count: 200) + "\n",
                "line 2 nests 202 levels deep, above the limit of 128"
            ),
            ("train:\n  batch: 99999999999999999999999\n", "'train.batch' must be an integer"),
            (String(repeating: "# padding\n", count: 110_000), "above the limit of 1048576"),
        ])
    func yamlStructure(yaml: String, message: String) {
        do {
            _ = try RunConfig.resolve(yaml: yaml, file: "c.yaml")
            Issue.record("accepted: \(yaml.prefix(80))")
        } catch let e as TrainingError {
            #expect(e.message.contains(message), "\(e.message)")
        } catch { Issue.record("\(error)") }
    }

    @Test("parameter groups: no-decay, frozen and learning-rate scales by group name; a wrong name lists the groups")
    func groups() throws {
        let c = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "optimizer.weight_decay=0.1", "optimizer.no_decay=[norms, embedding]",
                "optimizer.frozen=[head]", "optimizer.lr_scales=['embedding=0.1']",
            ])
        let g = try c.trainingOptions().groups
        #expect(
            g
                == ParameterGroups(
                    weightDecay: 0.1, noDecay: [.norms, .embedding], frozen: [.head],
                    learningRateScale: [.embedding: 0.1]))
        let wrong = try RunConfig.resolve(yaml: Self.yaml, overrides: ["optimizer.frozen=[embeddings]"])
        let error = try #require(throws: TrainingError.self) { try wrong.trainingOptions() }
        #expect(
            error.message.contains("'embeddings' is not a parameter group")
                && error.message.contains("embedding, head, norms"))
        #expect(throws: TrainingError.self) {
            try RunConfig.resolve(yaml: Self.yaml, overrides: ["optimizer.lr_scales=[mlp]"]).trainingOptions()
        }
    }

    @Test(
        """
        zeroth-order settings: ε ≤ 0, a bad perturbation count or projection setting, an unknown projected set are \
        refused
        """
    )
    func zerothOrder() throws {
        for bad in [
            ["method.name=mezo", "method.epsilon=0"], ["method.name=mezo", "method.epsilon=-1e-3"],
            ["method.name=mezo", "method.perturbations=0"],
            ["method.name=dizo", "method.clip_range=1.5"], ["method.name=dizo", "method.interval=0"],
        ] {
            #expect(throws: TrainingError.self, "\(bad)") {
                try RunConfig.resolve(yaml: Self.yaml, overrides: bad).trainingOptions()
            }
        }
        let unknown = try RunConfig.resolve(yaml: Self.yaml, overrides: ["method.name=dizo", "method.projected=qk"])
        let error = try #require(throws: TrainingError.self) { try unknown.trainingOptions() }
        #expect(error.message.contains("kv, qv, attention, all-linear, none"))
        for bad in [
            ["method.name=mezo", "train.loss=classification"], ["method.name=mezo", "train.loss=accuracy"],
            [
                "method.name=adamw", "train.loss=classification", "data.task=classification",
                "data.label_words=[' no', ' yes']",
            ],
        ] {
            #expect(throws: TrainingError.self, "\(bad)") {
                try RunConfig.resolve(yaml: Self.yaml, overrides: bad).trainingOptions()
            }
        }
        let classification = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "method.name=mezo", "train.loss=classification", "data.task=classification",
                "data.label_words=[' no', ' maybe', ' yes']",
            ]
        ).trainingOptions()
        #expect(classification.objective == .classification(classes: 3))
        let o = try RunConfig.resolve(
            yaml: Self.yaml, overrides: ["method.name=dizo", "method.projected=qv", "method.interval=25"]
        ).trainingOptions()
        #expect(
            o.method == .dizo && o.zerothOrder.projection.set == .qv && o.zerothOrder.projection.interval == 25
                && o.zerothOrder.epsilon == 1e-3)
    }

    @Test(
        """
        QFT settings out of range, an unknown gradient mode or group, fused updates with clipping are refused naming \
        the key
        """
    )
    func qft() throws {
        for (bad, key) in [
            (["method.outlier_fraction=0.7"], "method.outlier_fraction"),
            (["method.weight_block=-1"], "method.weight_block"),
            (["method.state_block=0"], "method.state_block"), (["method.outlier_refresh=-3"], "method.outlier_refresh"),
            (["method.gradients=sparse"], "method.gradients"),
            (["method.fp32_modules=[norms, lm_head]"], "method.fp32_modules"),
            (["optimizer.clip=1.0"], "method.gradients: stack"), (["train.accumulate=2"], "train.accumulate"),
        ] {
            let error = try #require(throws: TrainingError.self, "\(bad)") {
                try RunConfig.resolve(yaml: Self.yaml, overrides: ["method.name=qft", "optimizer.clip=0"] + bad)
                    .trainingOptions()
            }
            #expect(error.message.contains(key), "\(error.message)")
        }
        let o = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "method.name=qft", "method.gradients=stack", "method.fp32_modules=[embedding]",
                "method.weight_block=64",
            ]
        ).trainingOptions()
        #expect(
            o.qft.gradients == .stack && o.qft.weights.fp32Groups == [.norms, .embedding]
                && o.qft.weights.blockSize == 64 && o.clipNorm == 1.0)
    }

    @Test(
        """
        GaLore and AdaRankGrad settings: the policy follows the method; bad ranks, thresholds, intervals and \
        decompositions are refused
        """
    )
    func lowRank() throws {
        let galore = try RunConfig.resolve(
            yaml: Self.yaml, overrides: ["method.name=galore", "method.rank=64", "method.update_interval=100"]
        ).trainingOptions()
        #expect(
            galore.lowRank.policy == .fixed(rank: 64, interval: 100) && galore.lowRank.decomposition == .randomized
                && !galore.isFused)
        let ada = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: ["method.name=adarankgrad", "method.energy=0.8", "method.fused=true", "optimizer.clip=0"]
        ).trainingOptions()
        #expect(
            ada.lowRank.policy
                == .adaptive(minRank: 4, maxRank: 128, energy: 0.8, capture: 0.5, minInterval: 10, maxInterval: 200)
                && ada.isFused)
        for (bad, key) in [
            (["method.name=galore", "method.rank=0"], "method.rank"),
            (["method.name=galore", "method.update_interval=0"], "method.update_interval"),
            (["method.name=adarankgrad", "method.energy=1.2"], "method.energy"),
            (["method.name=adarankgrad", "method.capture=0"], "method.capture"),
            (["method.name=adarankgrad", "method.min_rank=200"], "method.min_rank"),
            (["method.name=galore", "method.svd=qr"], "method.svd"),
            (["method.name=galore", "method.fused=true"], "global gradient norm"),
        ] {
            let error = try #require(throws: TrainingError.self, "\(bad)") {
                try RunConfig.resolve(yaml: Self.yaml, overrides: bad).trainingOptions()
            }
            #expect(error.message.contains(key), "\(error.message)")
        }
    }

    @Test("LSP-Offload settings read into the options; unknown schedules and compressions are refused")
    func lsp() throws {
        let o = try RunConfig.resolve(
            yaml: Self.yaml,
            overrides: [
                "method.name=lsp-offload", "optimizer.clip=0", "method.size=512", "method.nonzeros=8",
                "method.schedule=after-backward", "method.check_frequency=50", "method.refit_threshold=0.3",
            ]
        ).trainingOptions()
        #expect(
            o.isFused && o.lsp.size == 512 && o.lsp.nonzeros == 8 && o.lsp.schedule == .afterBackward
                && o.lsp.checkFrequency == 50 && o.lsp.refitThreshold == 0.3)
        for bad in [["method.schedule=fcfs"], ["method.compression=dense"], ["optimizer.clip=1.0"]] {
            #expect(throws: TrainingError.self, "\(bad)") {
                try RunConfig.resolve(
                    yaml: Self.yaml, overrides: ["method.name=lsp-offload", "optimizer.clip=0"] + bad
                ).trainingOptions()
            }
        }
    }
}
