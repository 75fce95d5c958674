import Datasets
import Foundation
@testable import Formats
import Llama
import Methods
import TensorCore
import TestSupport
import Training

/// One loader under fuzzing: a folder of valid seed files made by our own writers (or real third-party files),
/// the files a mutant may replace, and what runs on the folder. `run` either returns or throws; a trap, a crash
/// or a hang is the failure the fuzzer looks for.
struct FuzzTarget {
    let name: String
    /// File name → valid contents.
    let files: [String: [UInt8]]
    /// The files mutated (one per mutant), with the byte range mutations favour (a binary header) and whether
    /// text mutations apply.
    let mutable: [(file: String, hot: Int, text: Bool)]
    let run: (_ folder: String) throws -> Void
}

enum FuzzSeeds {
    static let sentence = "Once upon a time, Leo the robot said: \"2 + 2 = 4\" \u{1F916}."

    /// A tiny tied-embedding model with the byte tokenizer plus three merges.
    static func tinyModel() throws -> LoadedModel {
        let c = LlamaConfig(
            dim: 16, ffnDim: 24, layerCount: 1, headCount: 4, kvHeadCount: 2, vocabSize: 262,
            maxSequenceLength: 16, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: true)
        let store = FP32ParameterStore(layout: ParameterLayout(c), ledger: MemoryLedger())
        store.initializeRandomly(Philox(seed: 5), std: 0.2)
        var tokens = (0..<256).map { String(ByteLevel.character(UInt8($0))) }
        tokens += ["th", "the", "Ġthe", "<|im_start|>", "<|im_end|>", "<pad>"]
        let tokenizer = try ByteLevelBPETokenizer(
            tokens: tokens, merges: ["t h", "th e", "Ġ the"], special: [259, 260],
            bos: nil, stop: [260], isolateDigits: true, file: "tiny")
        return LoadedModel(
            model: try LlamaModel(config: c, store: store, ledger: MemoryLedger()), tokenizer: tokenizer,
            chatTemplate: .chatML(defaultSystem: nil), chatTemplateSource: "{{ '<|im_start|>' }}")
    }

    static func contents(_ folder: String) throws -> [String: [UInt8]] {
        let names = try FileManager.default.contentsOfDirectory(atPath: folder)
        return Dictionary(
            uniqueKeysWithValues: try names.map {
                ($0, [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + $0))))
            })
    }

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// The JSON header's end in a safetensors file (8 + its length).
    static func safetensorsHeader(_ b: [UInt8]) -> Int {
        8 + Int(b.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}

extension FuzzTarget {
    /// Loads a model folder or file as `leantune inspect`/`generate` do: the shape alone, then the whole model,
    /// a tokenizer round trip and one forward pass of a few tokens.
    static func loadModel(_ path: String, tokenizer: String? = nil) throws {
        _ = try ModelFile.config(path)
        let loaded = try ModelFile.load(path, tokenizer: tokenizer, ledger: MemoryLedger())
        let ids = Array(loaded.tokenizer.encode(FuzzSeeds.sentence).prefix(4))
        _ = loaded.tokenizer.decode(ids)
        guard !ids.isEmpty else { return }
        _ = try loaded.model.logits(TokenBatch(sequences: [ids]))
    }

    /// Every loader of LeanTune with its seeds, made in `scratch`.
    static func all(scratch: String) throws -> [FuzzTarget] {
        let fm = FileManager.default
        try? fm.removeItem(atPath: scratch)
        try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let tiny = try FuzzSeeds.tinyModel()
        var targets: [FuzzTarget] = []

        let single = scratch + "/seed-hf", sharded = scratch + "/seed-hf-sharded"
        try HFDirectory.export(tiny, to: single)
        try HFDirectory.export(tiny, to: sharded, dtype: .bf16, shardBytes: 1024)
        for (name, folder) in [("hf-directory", single), ("hf-sharded", sharded)] {
            let files = try FuzzSeeds.contents(folder)
            targets.append(
                FuzzTarget(
                    name: name, files: files,
                    mutable: files.keys.sorted().map { f in
                        f.hasSuffix(".safetensors")
                            ? (f, FuzzSeeds.safetensorsHeader(files[f]!), false) : (f, files[f]!.count, true)
                    },
                    run: { try loadModel($0) }))
        }

        let weights = try FuzzSeeds.bytes(single + "/model.safetensors")
        targets.append(
            FuzzTarget(
                name: "safetensors", files: ["model.safetensors": weights],
                mutable: [("model.safetensors", FuzzSeeds.safetensorsHeader(weights), false)],
                run: { folder in
                    let file = try SafeTensorsFile(path: folder + "/model.safetensors")
                    for t in file.tensors.values where t.dtype.isFloatingPoint {
                        var out = [Float](repeating: 0, count: t.count)
                        out.withUnsafeMutableBufferPointer { file.read(t, into: $0.baseAddress!) }
                    }
                }))

        let gguf = try FuzzSeeds.bytes(fixtureURL("stories260K-llama-vocab.gguf").path)
        targets.append(
            FuzzTarget(
                name: "gguf", files: ["model.gguf": gguf], mutable: [("model.gguf", 16 << 10, false)],
                run: { try loadModel($0 + "/model.gguf") }))

        if fm.fileExists(atPath: SharedReal.model) {
            let checkpoint = try FuzzSeeds.bytes(SharedReal.model),
                tokenizer = try FuzzSeeds.bytes(SharedReal.tokenizer)
            targets.append(
                FuzzTarget(
                    name: "llama2c", files: ["model.bin": checkpoint, "tok512.bin": tokenizer],
                    mutable: [("model.bin", 28, false)],
                    run: { try loadModel($0 + "/model.bin", tokenizer: $0 + "/tok512.bin") }))
            targets.append(
                FuzzTarget(
                    name: "llama2c-tokenizer", files: ["tok512.bin": tokenizer],
                    mutable: [("tok512.bin", tokenizer.count, false)],
                    run: { folder in
                        let t = try ScoredPieceTokenizer.llama2c(path: folder + "/tok512.bin", vocabularySize: 512)
                        _ = t.decode(t.encode(FuzzSeeds.sentence))
                    }))
        }

        targets += try dataTargets(tiny)
        targets.append(configTarget())
        for method in [TrainingOptions.Method.adamw, .qft, .adarankgrad] {
            targets.append(try checkpointTarget(method, scratch: scratch))
        }
        return targets
    }

    /// A checkpoint of `method` after two steps of a tiny model, restored into a fresh trainer as `--resume` does.
    static func checkpointTarget(_ method: TrainingOptions.Method, scratch: String) throws -> FuzzTarget {
        func trainer() throws -> Trainer {
            let c = LlamaConfig(
                dim: 16, ffnDim: 32, layerCount: 1, headCount: 4, kvHeadCount: 2, vocabSize: 24, maxSequenceLength: 32)
            var o = TrainingOptions()
            o.method = method
            o.schedule = LRSchedule(.constant, peak: 1e-2, warmup: 0, total: 10)
            o.maxLength = 16
            o.clipNorm = method == .qft ? nil : 1
            var lowRank = LowRankAdam.Settings()
            lowRank.policy = .adaptive(
                minRank: 1, maxRank: 4, energy: 0.9, capture: 0.5, minInterval: 2, maxInterval: 5)
            o.lowRank = lowRank
            let examples = (0..<4).map { i in
                TokenizedExample(ids: (0..<12).map { Int32(($0 * 3 + i) % 24) }, trained: (0..<12).map { $0 > 0 })
            }
            let model = try Trainer.model(
                try LlamaModel(randomWeights: c, seed: 3, std: 0.1, ledger: MemoryLedger()), for: o)
            return try Trainer(model: model, examples: examples, options: o)
        }
        let first = try trainer()
        for _ in 0..<2 { _ = try first.runStep() }
        let folder = try Checkpoint.save(first, in: scratch + "/checkpoint-\(method.rawValue)")
        let files = try FuzzSeeds.contents(folder)
        return FuzzTarget(
            name: "checkpoint-\(method.rawValue)", files: files,
            mutable: files.keys.sorted().map { f in
                f.hasSuffix(".safetensors")
                    ? (f, FuzzSeeds.safetensorsHeader(files[f]!), false) : (f, files[f]!.count, true)
            },
            run: { folder in
                let resumed = try trainer()
                try Checkpoint.restore(resumed, from: folder)
                _ = try resumed.runStep()
            })
    }

    /// JSONL in each record shape and SST-2-style TSV, read and encoded as `leantune inspect-data` does.
    static func dataTargets(_ tiny: LoadedModel) throws -> [FuzzTarget] {
        let task = try ClassificationTask(template: "{text} It was", labelWords: [" terrible", " great"])
        func records(_ lines: [[String: Any]]) throws -> [UInt8] {
            Array(
                try lines.map {
                    String(
                        decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self)
                }
                .joined(separator: "\n").utf8) + [0x0A]
        }
        let shapes: [(String, [UInt8], ClassificationTask?)] = [
            (
                "jsonl-text", try records([["text": "Leo the robot likes the rain."], ["text": FuzzSeeds.sentence]]),
                nil
            ),
            (
                "jsonl-prompt",
                try records([
                    ["prompt": "Who is Leo?", "completion": " A robot."], ["prompt": "2+2=", "completion": "4"],
                ]), nil
            ),
            (
                "jsonl-messages",
                try records([
                    [
                        "messages": [
                            ["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi"],
                            ["role": "assistant", "content": "Hello!"],
                        ]
                    ],
                    [
                        "messages": [
                            ["role": "user", "content": "Who is Leo?"], ["role": "assistant", "content": "A robot."],
                        ]
                    ],
                ]), nil
            ),
            (
                "jsonl-alpaca",
                try records([
                    ["instruction": "Name a robot.", "input": "", "output": "Leo"],
                    ["instruction": "Add", "input": "2 and 2", "output": "4"],
                ]), nil
            ),
            (
                "jsonl-classification",
                try records([["text": "a fine film", "label": 1], ["text": "dull", "label": "0"]]), task
            ),
            (
                "tsv",
                Array(
                    "sentence\tlabel\nthe expressive power of the camera \t1\njason x is this bad on purpose \t0\n".utf8
                ), task
            ),
        ]
        return shapes.map { name, seed, task in
            let file = name == "tsv" ? "data.tsv" : "data.jsonl"
            return FuzzTarget(
                name: name, files: [file: seed], mutable: [(file, seed.count, true)],
                run: { folder in
                    var encoder = ExampleEncoder(tokenizer: tiny.tokenizer, template: tiny.chatTemplate)
                    encoder.task = task
                    let path = folder + "/" + file
                    // Skipping invalid records, then refusing the file for the first (the two `data.on_error`
                    // settings).
                    for (_, record) in try DataReader.readNumbered(path, task: task, onError: .skip).records {
                        _ = try encoder.encode(record)
                    }
                    _ = try DataReader.readNumbered(path, task: task)
                })
        }
    }

    /// A run configuration, resolved and turned into training options as `leantune validate` does.
    static func configTarget() -> FuzzTarget {
        let yaml = """
            # a comment
            model:
              path: model.gguf
            data:
              train: data.jsonl
              task: classification
              template: "{text} It was"
              label_words: [" terrible", " great"]
            method:
              name: galore
              rank: 8
            optimizer:
              lr: 1.0e-3
              frozen: [embedding]
            schedule:
              shape: cosine
              warmup: 20
              steps: 500
            train:
              batch: 16
              seq: 256
              precision: bf16
            eval:
              every: 100

            """
        return FuzzTarget(
            name: "yaml", files: ["config.yaml": Array(yaml.utf8)], mutable: [("config.yaml", yaml.utf8.count, true)],
            run: { folder in
                let settings = try RunConfig.load(folder + "/config.yaml")
                _ = try settings.trainingOptions()
                _ = try RunConfig.classificationTask(settings.sections().data)
            })
    }
}
