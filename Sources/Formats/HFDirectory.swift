import Foundation
import Llama
import TensorCore

/// A Hugging Face model directory: config.json, model.safetensors (or shards with
/// model.safetensors.index.json), tokenizer.json, tokenizer_config.json, generation_config.json.
public enum HFDirectory {
    // MARK: - Loading

    /// Loads `dir`. Every tensor is checked (present, shape, float dtype) before any is read. With `lazy`, the
    /// model's store reads the weights from the memory map tensor by tensor: convert it into the store a run
    /// trains in (``ParameterStore``'s converting initializers), with no fp32 copy of a large model on the side.
    /// Otherwise the weights are copied into an fp32 store.
    public static func load(_ dir: String, lazy: Bool = false, ledger: MemoryLedger = .shared) throws -> LoadedModel {
        let config = try HFConfig.parse(try json(dir + "/config.json"), file: dir + "/config.json")
        let layout = ParameterLayout(config)
        let files = try weightFiles(dir)
        var sources: [(file: SafeTensorsFile, tensor: SafeTensor)] = []
        let stacked = FusedProjections.places(layout, config)
        for (id, info) in layout.parameters.enumerated() {
            // a parameter of a stacked tensor is read from its rows (the whole tensor's shape is checked)
            let place = stacked[id]
            let name = place?.group.name ?? info.name
            guard let (file, found) = files.lazy.compactMap({ f in f.tensors[name].map { (f, $0) } }).first else {
                throw FormatError(
                    file: dir, problem: "tensor '\(name)' is in no safetensors file",
                    fix: "The checkpoint is incomplete or not a Llama model.")
            }
            let expected = place?.group.shape ?? info.shape
            guard found.shape == expected else {
                throw FormatError(
                    file: file.path,
                    problem: "tensor '\(name)' has shape \(found.shape); config.json needs \(expected)",
                    fix: "config.json and the weights disagree.")
            }
            let tensor = place.map { found.rows($0.row..<$0.row + info.shape[0], name: info.name) } ?? found
            guard tensor.dtype.isFloatingPoint else {
                throw FormatError(
                    file: file.path, problem: "tensor '\(info.name)' is \(tensor.dtype) (integer)",
                    fix: "LeanTune loads float weights (F32, BF16, F16); dequantize the checkpoint first.")
            }
            sources.append((file, tensor))
        }
        let mapped = SafeTensorsParameterStore(layout: layout, sources: sources, ledger: ledger)
        let store: any ParameterStore = lazy ? mapped : FP32ParameterStore(converting: mapped, ledger: ledger)
        let tokenizerConfig = (try? json(dir + "/tokenizer_config.json")) ?? [:]
        let tokenizer = try HFTokenizer.load(
            dir + "/tokenizer.json", tokenizerConfig: tokenizerConfig,
            generationConfig: (try? json(dir + "/generation_config.json")) ?? [:])
        guard tokenizer.vocabularySize <= config.vocabSize else {
            throw FormatError(
                file: dir + "/tokenizer.json",
                problem:
                    """
                    the tokenizer has \(tokenizer.vocabularySize) tokens but the model's vocabulary is \
                    \(config.vocabSize)
                    """,
                fix: "Use the tokenizer that came with the model.")
        }
        let template = tokenizerConfig["chat_template"] as? String
        func tokenText(_ key: String) -> String {
            (tokenizerConfig[key] as? String) ?? ((tokenizerConfig[key] as? [String: Any])?["content"] as? String) ?? ""
        }
        return LoadedModel(
            model: try LlamaModel(config: config, store: store, ledger: ledger), tokenizer: tokenizer,
            chatTemplate: template.flatMap(ChatTemplate.recognise), chatTemplateSource: template,
            templateTokens: (tokenText("bos_token"), tokenText("eos_token")))
    }

    /// The safetensors files of `dir`: the shards named by the index, or model.safetensors.
    static func weightFiles(_ dir: String) throws -> [SafeTensorsFile] {
        let index = dir + "/model.safetensors.index.json"
        guard FileManager.default.fileExists(atPath: index) else {
            return [try SafeTensorsFile(path: dir + "/model.safetensors")]
        }
        guard let map = try json(index)["weight_map"] as? [String: String] else {
            throw FormatError(file: index, problem: "no weight_map object", fix: "The index is corrupted.")
        }
        return try Set(map.values).sorted().map { name in
            let path = dir + "/" + name
            guard FileManager.default.fileExists(atPath: path) else {
                throw FormatError(
                    file: path, problem: "the shard named by model.safetensors.index.json is missing",
                    fix: "Download the whole checkpoint.")
            }
            return try SafeTensorsFile(path: path)
        }
    }

    static func json(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(
                file: path, problem: "cannot read the file", fix: "Check that the directory holds a Hugging Face model."
            )
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FormatError(file: path, problem: "not a JSON object", fix: "The file is corrupted.")
        }
        return object
    }

    // MARK: - Export

    /// Writes `loaded` as a Hugging Face directory (created if missing). Query and key rows are
    /// permuted to the rotate-half layout when the model uses adjacent pairs (llama2.c, GGUF), so
    /// transformers computes the same function. Weights above `shardBytes` are split into shards.
    /// Returns what could not be written (e.g. a tokenizer format without a tokenizer.json form).
    @discardableResult
    public static func export(
        _ loaded: LoadedModel, to dir: String, dtype: DType = .f32, shardBytes: Int = 5 << 30
    ) throws -> [String] {
        let m = loaded.model, c = m.config, layout = m.layout
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw FormatError(file: dir, problem: "cannot create the directory", fix: "Choose a writable location.")
        }
        var exported = c
        exported.ropeLayout = .rotateHalf
        let stop = loaded.tokenizer.stopTokens.sorted()
        try write(HFConfig.json(exported, bos: loaded.tokenizer.bos, eos: stop.first), to: dir + "/config.json")
        var generation: [String: Any] = ["_from_model_config": true]
        if let bos = loaded.tokenizer.bos { generation["bos_token_id"] = Int(bos) }
        if !stop.isEmpty { generation["eos_token_id"] = stop.count == 1 ? Int(stop[0]) as Any : stop.map { Int($0) } }
        try write(generation, to: dir + "/generation_config.json")

        // Weights in layout order, in shards of at most shardBytes; each tensor is read when written.
        var shards: [[SafeTensorsWriter.Entry]] = [[]], shardSize = 0
        func values(_ id: ParameterID) -> [Float] {
            let info = layout.parameters[id], values = m.store.withFloats(id) { Array($0) }
            let permute = c.ropeLayout == .adjacentPairs && (info.role == .query || info.role == .key)
            return permute
                ? rotateHalfOrder(values, heads: info.shape[0] / c.headDim, headDim: c.headDim, columns: info.shape[1])
                : values
        }
        let stacked = FusedProjections.places(layout, c)
        for (id, info) in layout.parameters.enumerated() where !(c.tiedEmbeddings && info.role == .head) {
            let entry: SafeTensorsWriter.Entry
            if let place = stacked[id] {  // the stacked tensor, written where its first part is
                guard place.row == 0 else { continue }
                let parts = place.group.parts
                entry = SafeTensorsWriter.Entry(name: place.group.name, shape: place.group.shape) {
                    parts.flatMap(values)
                }
            } else {
                entry = SafeTensorsWriter.Entry(name: info.name, shape: info.shape) { values(id) }
            }
            let bytes = entry.shape.reduce(1, *) * dtype.byteSize
            if shardSize > 0, shardSize + bytes > shardBytes {
                shards.append([])
                shardSize = 0
            }
            shardSize += bytes
            shards[shards.count - 1].append(entry)
        }
        if shards.count == 1 {
            try SafeTensorsWriter.write(
                shards[0], to: dir + "/model.safetensors", dtype: dtype, metadata: ["format": "pt"])
        } else {
            var weightMap: [String: String] = [:], total = 0
            for (k, shard) in shards.enumerated() {
                let name = String(format: "model-%05d-of-%05d.safetensors", k + 1, shards.count)
                total += try SafeTensorsWriter.write(
                    shard, to: dir + "/" + name, dtype: dtype, metadata: ["format": "pt"])
                for e in shard { weightMap[e.name] = name }
            }
            try write(
                ["metadata": ["total_size": total], "weight_map": weightMap], to: dir + "/model.safetensors.index.json")
        }
        return try HFTokenizer.export(loaded, to: dir)
    }

    /// Rows of a query or key matrix from adjacent-pair order (2i, 2i+1) to rotate-half order (i, i+E/2), per head.
    static func rotateHalfOrder(_ w: [Float], heads: Int, headDim e: Int, columns: Int) -> [Float] {
        var out = w
        for h in 0..<heads {
            for i in 0..<e / 2 {
                for (from, to) in [(2 * i, i), (2 * i + 1, i + e / 2)] {
                    let src = (h * e + from) * columns, dst = (h * e + to) * columns
                    out.replaceSubrange(dst..<dst + columns, with: w[src..<src + columns])
                }
            }
        }
        return out
    }

    static func write(_ object: [String: Any], to path: String) throws {
        try AtomicFile.write(Data((try JSONText.encode(object) + "\n").utf8), to: path)
    }
}
