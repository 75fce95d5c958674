import Llama
import TensorCore

/// The legacy llama2.c checkpoint (version 0): a header of 7 int32 (dim, hidden_dim, n_layers,
/// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means an untied classifier),
/// then fp32 tensors stacked over layers in a fixed order. RoPE uses adjacent pairs.
public enum Llama2cCheckpoint {
    /// The configuration in the header of `path` (no weights are read).
    public static func config(_ path: String) throws -> LlamaConfig {
        var r = try BinaryReader(path: path)
        return try header(&r)
    }

    static func header(_ r: inout BinaryReader) throws -> LlamaConfig {
        let path = r.path
        var h: [Int] = []
        for field in ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"] {
            h.append(Int(try r.int32("header field \(field)")))
        }
        let config = LlamaConfig(
            dim: h[0], ffnDim: h[1], layerCount: h[2], headCount: h[3], kvHeadCount: h[4], vocabSize: abs(h[5]),
            maxSequenceLength: h[6], normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .adjacentPairs,
            tiedEmbeddings: h[5] > 0)
        do { try config.validate() } catch let e as LlamaError {
            throw FormatError(
                file: path, problem: "header \(h) is not a valid model: \(e.message)",
                fix: "This is not a llama2.c version-0 checkpoint (or it is corrupted).")
        }
        return config
    }

    /// Reads `path` into an fp32 store, checking that the file holds exactly what the header promises.
    public static func load(_ path: String, ledger: MemoryLedger = .shared) throws -> (LlamaConfig, FP32ParameterStore)
    {
        var r = try BinaryReader(path: path)
        let config = try header(&r),
            h = [
                config.dim, config.ffnDim, config.layerCount, config.headCount, config.kvHeadCount,
                config.tiedEmbeddings ? config.vocabSize : -config.vocabSize, config.maxSequenceLength,
            ]
        let c = config, L = c.layerCount
        let perLayer = 2 * c.dim + 2 * c.dim * c.dim + 2 * c.kvDim * c.dim + 3 * c.ffnDim * c.dim
        let ropeTables = c.maxSequenceLength * c.headDim  // freq_cis_real + freq_cis_imag
        let floats = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + L * perLayer + c.dim + ropeTables
        let expected = 28 + 4 * floats
        guard expected == r.count else {
            throw FormatError(
                file: path, problem: "header \(h) implies \(expected) bytes but the file has \(r.count)",
                fix: r.count < expected
                    ? "The file is truncated; download it again."
                    : """
                    The file has extra bytes: it is not a version-0 llama2.c checkpoint (export it with \
                    legacy_export).
                    """
            )
        }
        let layout = ParameterLayout(config)
        let store = FP32ParameterStore(layout: layout, ledger: ledger)
        func read(_ id: ParameterID, _ what: String) throws {
            try r.floats(into: store.view(id).baseAddress!, count: layout.parameters[id].count, what)
        }
        func readStacked(_ pick: (LayerParameterIDs) -> ParameterID, _ what: String) throws {
            for l in 0..<L { try read(pick(layout.layers[l]), "\(what)[\(l)]") }
        }
        try read(layout.embedding, "token_embedding")
        try readStacked(\.attentionNorm, "rms_att")
        try readStacked(\.query, "wq")
        try readStacked(\.key, "wk")
        try readStacked(\.value, "wv")
        try readStacked(\.output, "wo")
        try readStacked(\.ffnNorm, "rms_ffn")
        try readStacked(\.gate, "w1")
        try readStacked(\.down, "w2")
        try readStacked(\.up, "w3")
        try read(layout.finalNorm, "rms_final")
        try r.skip(4 * ropeTables, "freq_cis tables")
        if !c.tiedEmbeddings { try read(layout.head, "wcls") }
        return (config, store)
    }
}
