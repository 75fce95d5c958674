import Foundation
import TestSupport
import Testing
@testable import Formats
import Llama
import TensorCore

@Suite("Hugging Face export and reload")
struct ExportTests {
    /// A byte-level BPE over the 256 byte characters plus a few merges and two special tokens.
    static func tinyTokenizer() throws -> ByteLevelBPETokenizer {
        var tokens = (0..<256).map { String(ByteLevel.character(UInt8($0))) }
        let merges = ["t h", "th e", "Ġ t", "Ġt h", "Ġth e"]
        tokens += ["th", "the", "Ġt", "Ġth", "Ġthe", "<|im_start|>", "<|im_end|>"]
        return try ByteLevelBPETokenizer(
            tokens: tokens, merges: merges, special: [261, 262], bos: nil, stop: [262],
            isolateDigits: true, file: "tiny")
    }

    static func tinyModel(_ layout: RoPELayout) throws -> LoadedModel {
        let c = LlamaConfig(
            dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 263,
            maxSequenceLength: 32, ropeTheta: 500, ropeLayout: layout,
            ropeScaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 16),
            tiedEmbeddings: false)
        let store = FP32ParameterStore(layout: ParameterLayout(c), ledger: MemoryLedger())
        store.initializeRandomly(Philox(seed: 11), std: 0.3)
        return LoadedModel(
            model: try LlamaModel(config: c, store: store, ledger: MemoryLedger()), tokenizer: try tinyTokenizer(),
            chatTemplate: .chatML(defaultSystem: nil), chatTemplateSource: "{{ '<|im_start|>' }}")
    }

    static func directory(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-export-\(getpid())-\(name)")
            .path
        try? FileManager.default.removeItem(atPath: dir)
        return dir
    }

    @Test("fp32 export reloads every tensor bit for bit, and the tokenizer and template", arguments: [1 << 30, 4096])
    func f32RoundTrip(shardBytes: Int) throws {
        let original = try Self.tinyModel(.rotateHalf), dir = Self.directory("f32-\(shardBytes)")
        try HFDirectory.export(original, to: dir, shardBytes: shardBytes)
        #expect(FileManager.default.fileExists(atPath: dir + "/model.safetensors.index.json") == (shardBytes < 1 << 20))
        let reloaded = try HFDirectory.load(dir, ledger: MemoryLedger())
        #expect(reloaded.model.config == original.model.config)
        let a = original.model.store as! FP32ParameterStore, b = reloaded.model.store as! FP32ParameterStore
        #expect(Array(a.slab.buffer) == Array(b.slab.buffer))
        let text = "<|im_start|>the 2024 theme<|im_end|>"
        #expect(original.tokenizer.encode(text).starts(with: [261, 257]))  // the special token, then "the" merged
        #expect(reloaded.tokenizer.encode(text) == original.tokenizer.encode(text))
        #expect(reloaded.tokenizer.stopTokens == original.tokenizer.stopTokens)
        #expect(reloaded.chatTemplateSource == original.chatTemplateSource)
    }

    @Test("an adjacent-pair (llama2.c, GGUF) model exports to rotate-half with the same logits")
    func adjacentToRotateHalf() throws {
        let original = try Self.tinyModel(.adjacentPairs), dir = Self.directory("rope")
        try HFDirectory.export(original, to: dir)
        let reloaded = try HFDirectory.load(dir, ledger: MemoryLedger())
        #expect(reloaded.model.config.ropeLayout == .rotateHalf)
        let batch = TokenBatch(sequences: [[1, 5, 9, 200, 7, 3, 261, 40, 41]])
        let a = try original.model.logits(batch), b = try reloaded.model.logits(batch)
        #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test("bf16 export holds the bf16-rounded weights")
    func bf16() throws {
        let original = try Self.tinyModel(.rotateHalf), dir = Self.directory("bf16")
        try HFDirectory.export(original, to: dir, dtype: .bf16)
        let reloaded = try HFDirectory.load(dir, ledger: MemoryLedger())
        let a = original.model.store as! FP32ParameterStore, b = reloaded.model.store as! FP32ParameterStore
        #expect(zip(a.slab.buffer, b.slab.buffer).allSatisfy { Conversions.float(bf16: Conversions.bf16($0)) == $1 })
    }

    @Test("unsupported architectures and settings are refused by name")
    func refusals() throws {
        let base: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 24,
            "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
        ]
        #expect(try HFConfig.parse(base, file: "c").tiedEmbeddings == false)
        var gpt = base
        gpt["architectures"] = ["GPT2LMHeadModel"]
        let e1 = try #require(throws: FormatError.self) { try HFConfig.parse(gpt, file: "c") }
        #expect(e1.problem.contains("GPT2LMHeadModel") && e1.fix.contains("LlamaForCausalLM"))
        var mistral = base
        mistral["architectures"] = ["MistralForCausalLM"]
        mistral["sliding_window"] = 4096  // sliding-window attention, every layer (issue 22)
        #expect(try HFConfig.parse(mistral, file: "c").slidingWindow == 4096)
        mistral["sliding_window"] = 0
        #expect(throws: FormatError.self) { try HFConfig.parse(mistral, file: "c") }
        mistral["sliding_window"] = NSNull()
        #expect(try HFConfig.parse(mistral, file: "c").dim == 16)
        var scaled = base
        scaled["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0]
        if case .yarn(let factor, _, _, _, _, _) = try HFConfig.parse(scaled, file: "c").ropeScaling {
            #expect(factor == 4)
        } else {
            Issue.record("yarn scaling was not read")
        }
        // a null pre-training context counts as absent: no error without scaling, rope_scaling's own with yarn
        scaled["original_max_position_embeddings"] = NSNull()
        scaled["rope_scaling"] = ["rope_type": "default"]
        #expect(try HFConfig.parse(scaled, file: "c").ropeScaling == nil)
        scaled["rope_scaling"] = ["rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16]
        if case .yarn(_, let original, _, _, _, _) = try HFConfig.parse(scaled, file: "c").ropeScaling {
            #expect(original == 16)
        } else {
            Issue.record("yarn scaling was not read beside a null original_max_position_embeddings")
        }
        scaled["original_max_position_embeddings"] = nil
        scaled["rope_scaling"] = ["rope_type": "mrope", "factor": 4.0]  // Qwen2-VL's multimodal RoPE
        let e2 = try #require(throws: FormatError.self) { try HFConfig.parse(scaled, file: "c") }
        #expect(e2.problem.contains("mrope") && e2.fix.contains("yarn, longrope"))
        // bad scaling values are named, never trapped on: head dim 4 has 2 pairs
        for (scaling, problem) in [
            (["rope_type": "yarn", "factor": "4"], "rope_scaling.factor is missing or not a number"),
            (["rope_type": "yarn", "factor": -4.0], "rope_scaling.factor is -4.0"),
            (
                ["rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": 0.5],
                "must be a whole number"
            ),
            (
                ["rope_type": "longrope", "short_factor": [1.0, 2.0, 3.0], "long_factor": [1.0, 2.0]],
                "3 frequency factors for 2 pairs"
            ),
            (
                ["rope_type": "longrope", "short_factor": [1.0, "x"], "long_factor": [1.0, 2.0]],
                "short_factor is not a list"
            ),
            (
                ["rope_type": "longrope", "short_factor": [1.0, 0.0], "long_factor": [1.0, 2.0]],
                "short_factor is not a list"
            ),
        ] as [([String: Any], String)] {
            scaled["rope_scaling"] = scaling
            let e = try #require(throws: FormatError.self) { try HFConfig.parse(scaled, file: "c") }
            #expect(e.problem.contains(problem), "\(e)")
        }
        for (key, value) in [("num_hidden_layers", true as Any), ("hidden_size", 16.5), ("vocab_size", "10")] {
            var wrong = base
            wrong[key] = value
            let read =
                // as from a file
                try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: wrong)) as! [String: Any]
            let e = try #require(throws: FormatError.self) { try HFConfig.parse(read, file: "c") }
            #expect(e.problem.contains("'\(key)' is missing or not an integer"), "\(e)")
        }
        var missing = base
        missing["hidden_size"] = nil
        let e3 = try #require(throws: FormatError.self) { try HFConfig.parse(missing, file: "c") }
        #expect(e3.problem.contains("hidden_size"))
    }

    @Test("Gemma configs as the Hub has them: defaults, legacy RoPE keys, layer patterns, refusals")
    func gemmaConfigs() throws {
        func parse(_ j: [String: Any]) throws -> LlamaConfig {  // as read from a file
            try HFConfig.parse(
                JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: j)) as! [String: Any],
                file: "c")
        }
        // google/gemma-3-1b-it's keys, shrunk: RoPE as rope_theta, rope_local_base_freq and rope_scaling (transformers
        // 4), and sliding_window_pattern in place of layer_types
        let gemma3: [String: Any] = [
            "architectures": ["Gemma3ForCausalLM"], "hidden_size": 16, "intermediate_size": 24, "head_dim": 8,
            "num_hidden_layers": 7, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 10,
            "hidden_activation": "gelu_pytorch_tanh", "query_pre_attn_scalar": 256, "rope_theta": 1_000_000.0,
            "rope_local_base_freq": 10000.0, "rope_scaling": ["rope_type": "linear", "factor": 8.0],
            "sliding_window": 512, "sliding_window_pattern": 6, "final_logit_softcapping": NSNull(),
            "attn_logit_softcapping": NSNull(),
        ]
        let c3 = try parse(gemma3)
        #expect(c3.slidingLayers == [true, true, true, true, true, false, true] && c3.slidingWindow == 512)
        #expect(c3.queryKeyNorm && c3.tiedEmbeddings && c3.headDim == 8 && c3.ropeTheta == 1_000_000)
        #expect(c3.ropeScaling == .linear(factor: 8) && c3.gemma.localRopeTheta == 10000)
        #expect(c3.turnsLocally(layer: 0) && !c3.turnsLocally(layer: 5))
        #expect(c3.gemma.attentionSoftcap == nil && c3.gemma.logitSoftcap == nil)
        #expect(c3.gemma.queryPreAttentionScalar == 256 && c3.attentionScale == 1 / 16)
        // Gemma 2 without the soft-capping keys gets transformers' defaults (50 and 30), and alternates layers
        var gemma2 = gemma3
        gemma2["architectures"] = ["Gemma2ForCausalLM"]
        for key in ["final_logit_softcapping", "attn_logit_softcapping", "sliding_window_pattern"] { gemma2[key] = nil }
        let c2 = try parse(gemma2)
        #expect(c2.gemma.attentionSoftcap == 50 && c2.gemma.logitSoftcap == 30 && !c2.queryKeyNorm)
        #expect(c2.slidingLayers == [true, false, true, false, true, false, true] && c2.gemma.localRopeTheta == nil)
        // Gemma 1: no window, no output norms, whatever its hidden_act says
        var gemma1 = gemma2
        (gemma1["architectures"], gemma1["hidden_act"], gemma1["hidden_activation"]) = (
            ["GemmaForCausalLM"], "gelu", nil
        )
        let c1 = try parse(gemma1)
        #expect(c1.slidingWindow == nil && !c1.gemma.outputNorms && c1.gemma.normsScaleFromOne && c1.gemma.geluGate)
        for (change, problem) in [
            (["architectures": ["Gemma3ForConditionalGeneration"]], "with its vision tower"),
            (["hidden_activation": "gelu"], "hidden_activation 'gelu' is not supported"),
            (["query_pre_attn_scalar": -1.0], "query_pre_attn_scalar must be a positive number"),
            (["use_bidirectional_attention": true], "use_bidirectional_attention"),
            (["rope_parameters": ["sliding_attention": ["rope_type": "linear", "factor": 2.0]]], "sliding_attention"),
        ] as [([String: Any], String)] {
            let wrong = gemma3.merging(change) { $1 }
            let e = try #require(throws: FormatError.self) { try parse(wrong) }
            #expect(e.problem.contains(problem), "\(e)")
        }
    }

    @Test(
        "shapes beyond the limits are refused before anything is allocated, naming the key and the limit",
        arguments: [
            ("num_hidden_layers", Int.max, "layers is 9223372036854775807, above LeanTune's limit of 1024"),
            ("vocab_size", 1 << 30, "vocab_size is 1073741824, above LeanTune's limit of 4194304"),
            ("hidden_size", 1 << 17, "dim is 131072"),
            ("intermediate_size", 1 << 20, "parameters, above LeanTune's limit of 1099511627776"),
        ])
    func shapeLimits(key: String, value: Int, message: String) throws {
        var j: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "hidden_size": 65536, "intermediate_size": 24,
            "num_hidden_layers": 1024, "num_attention_heads": 512, "vocab_size": 10,
        ]
        j[key] = value
        if key != "intermediate_size" {
            j["hidden_size"] = key == "hidden_size" ? value : 16; j["num_attention_heads"] = 4
        }
        let e = try #require(throws: FormatError.self) { try HFConfig.parse(j, file: "c") }
        #expect(e.problem.contains(message), "\(e)")
    }

    @Test("weights holding NaN or infinity are refused, naming the tensor")
    func nonFiniteWeights() throws {
        let original = try Self.tinyModel(.rotateHalf), dir = Self.directory("nan")
        let store = original.model.store as! FP32ParameterStore, id = original.model.layout.layers[1].up
        store.view(id)[5] = .nan
        store.view(id)[6] = -.infinity
        try HFDirectory.export(original, to: dir)
        let e = try #require(throws: FormatError.self) {
            try ModelFile.load(dir, tokenizer: nil, ledger: MemoryLedger())
        }
        #expect(e.problem == "tensor 'model.layers.1.mlp.up_proj.weight' holds 2 NaN or infinite values", "\(e)")
    }

    @Test("a missing shard is named", .enabled(if: true))
    func missingShard() throws {
        let original = try Self.tinyModel(.rotateHalf), dir = Self.directory("shard")
        try HFDirectory.export(original, to: dir, shardBytes: 4096)
        try FileManager.default.removeItem(
            atPath: dir + "/model-00002-of-" + String(format: "%05d", try shardCount(dir)) + ".safetensors")
        let e = try #require(throws: FormatError.self) { try HFDirectory.load(dir, ledger: MemoryLedger()) }
        #expect(e.file.hasSuffix("model-00002-of-\(String(format: "%05d", try shardCount(dir))).safetensors"))
    }

    func shardCount(_ dir: String) throws -> Int {
        let map = try HFDirectory.json(dir + "/model.safetensors.index.json")["weight_map"] as! [String: String]
        return Set(map.values).count
    }

    @Test("SmolLM2 GGUF → Hugging Face directory → reload: same logits and tokens", .enabled(if: SmolLM2.available))
    func smolRoundTrip() throws {
        let original = try ModelFile.load(SmolLM2.path, tokenizer: nil, ledger: MemoryLedger()),
            dir = Self.directory("smol")
        try HFDirectory.export(original, to: dir)
        let reloaded = try ModelFile.load(dir, tokenizer: nil, ledger: MemoryLedger())
        let text = "<|im_start|>user\nWhat is the capital of France? 42<|im_end|>\n"
        let ids = original.tokenizer.encode(text)
        #expect(reloaded.tokenizer.encode(text) == ids)
        let batch = TokenBatch(batchSize: 1, length: ids.count, inputs: ids, targets: ids)
        let a = try original.model.logits(batch), b = try reloaded.model.logits(batch)
        #expect(zip(a, b).map { abs($0 - $1) }.max()! < 1e-3)
        #expect(reloaded.chatTemplate == original.chatTemplate)
        try FileManager.default.removeItem(atPath: dir)
    }
}

@Suite("RoPE scaling")
struct RoPEScalingTests {
    @Test(
        """
        linear, llama3, dynamic, yarn and longrope frequencies and cos/sin factors match transformers' rope \
        initialisation, before and past the lengths where they change
        """)
    func matchesTransformers() throws {
        let data = try Data(contentsOf: fixtureURL("rope-scaling.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        #expect(cases.count == 7)
        for c in cases {
            let scaling = c["rope_scaling"] as! [String: Any], theta = c["theta"] as! Double, e = c["head_dim"] as! Int
            let context = c["max_position_embeddings"] as! Int
            let config = try HFConfig.parse(
                [
                    "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
                    "num_hidden_layers": 1, "num_attention_heads": 32, "vocab_size": 10, "rope_theta": theta,
                    "rope_scaling": scaling, "max_position_embeddings": context,
                ], file: "config.json")
            let scaled = try #require(config.ropeScaling)
            let expected = c["inv_freq"] as! [Double], label = "\(scaling["rope_type"]!) at \(c["seq_len"] ?? "start")"
            // without a seq_len, transformers' initial tables: those of a short sequence
            let (ours, scale) = scaled.frequencies(theta: theta, headDim: e, positions: (c["seq_len"] as? Int) ?? 1)
            #expect(expected.count == e / 2 && ours.count == e / 2)
            for (i, reference) in expected.enumerated() {
                #expect(
                    abs(ours[i] - reference) <= 1e-6 * reference, "\(label) frequency \(i): \(ours[i]) vs \(reference)")
            }
            let factor = c["attention_factor"] as! Double
            #expect(abs(scale - factor) <= 1e-9 * factor, "\(label): cos/sin factor \(scale) vs \(factor)")
        }
    }
}

@Suite("SentencePiece export")
struct SentencePieceExportTests {
    @Test(
        "stories260K (llama2.c) → Hugging Face directory → reload: same tokens and the greedy oracle, byte for byte",
        .enabled(if: SharedReal.available))
    func llama2cRoundTrip() throws {
        let original = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        let dir = ExportTests.directory("stories")
        try #require(try HFDirectory.export(original, to: dir).isEmpty)
        let reloaded = try ModelFile.load(dir, tokenizer: nil, ledger: MemoryLedger())
        #expect(reloaded.tokenizer is SentencePieceBPETokenizer)
        for text in [
            "Once upon a time, there was a little girl named Lily.", "naïve café ✓ 😀", "  two  spaces",
            "Tom's ball\nnew line",
        ] {
            #expect(reloaded.tokenizer.encode(text) == original.tokenizer.encode(text), "\(text.debugDescription)")
        }
        var sampler = Sampler(temperature: 0, seed: 0)
        let bos = try #require(reloaded.tokenizer.bos)
        let ids = try reloaded.model.generate(
            prompt: [bos], maxNewTokens: 200, sampler: &sampler, stop: reloaded.tokenizer.stopTokens)
        let expected = try String(contentsOfFile: SharedReal.stories + "/expected_greedy_200.txt", encoding: .utf8)
        #expect(reloaded.tokenizer.decode(ids, after: bos) == expected)
    }
}

@Suite("Loading at scale")
struct LargeLoadTests {
    /// The llama-3.2-1b shape (1.24 B parameters) with random weights made as they are read, exported as sharded
    /// bf16 (2.5 GB), then loaded lazily into the bf16 store a run trains in.
    @Test(
        """
        a sharded bf16 llama-3.2-1b directory loads straight into a bf16 store: peak = the store + one tensor, bits \
        exact
        """
    )
    func bf16DirectoryIntoBF16Store() throws {
        let c = LlamaConfig.builtinShapes["llama-3.2-1b"]!, layout = ParameterLayout(c)
        let dir = ExportTests.directory("llama-3.2-1b-bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let random = RandomParameterStore(layout: layout, seed: 5, ledger: MemoryLedger())
        let source = LoadedModel(
            model: try LlamaModel(config: c, store: random, ledger: MemoryLedger()),
            tokenizer: try ExportTests.tinyTokenizer(), chatTemplate: nil, chatTemplateSource: nil)
        try HFDirectory.export(source, to: dir, dtype: .bf16, shardBytes: 1 << 30)
        #expect(FileManager.default.fileExists(atPath: dir + "/model.safetensors.index.json"))

        let ledger = MemoryLedger()
        let loaded = try HFDirectory.load(dir, lazy: true, ledger: ledger)
        #expect(loaded.model.config == c)
        let store = BF16ParameterStore(converting: loaded.model.store, seed: 0, ledger: ledger)
        let largest = 4 * layout.parameters.map(\.count).max()!  // the mapped store's one-tensor workspace
        let expected = BF16ParameterStore.bytes(layout).values.reduce(0, +) + largest
        #expect(
            ledger.snapshot().peakTotal == expected,
            "peak \(ledger.snapshot().peakTotal) vs store + one tensor \(expected)")
        #expect(
            ledger.snapshot().peak[.weights] == BF16ParameterStore.bytes(layout)[.weights],
            "no fp32 weights on the side")
        for id in [layout.embedding, layout.layers[7].gate, layout.finalNorm] {
            random.withFloats(id) { w in
                #expect(
                    zip(w, store.bits(id)).allSatisfy { Conversions.bf16($0) == $1 }, "\(layout.parameters[id].name)")
            }
        }
    }
}
