import Foundation
import Llama
import TensorCore

/// A file under Tests/Fixtures.
public func fixtureURL(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(
        "Fixtures/\(name)")
}

/// The real third-party files in ../shared/real (beside the repository; never copied into it).
public enum SharedReal {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/real").path
    /// Whether ../shared/real is beside the repository (tests that read it are skipped, and say so, when it is not).
    public static let available = FileManager.default.fileExists(atPath: root)
    public static let stories = root + "/model/stories260K"
    public static let model = stories + "/stories260K.bin"
    public static let tokenizer = stories + "/tok512.bin"
    public static let tinyStories = root + "/data/tinystories/tinystories_sample.txt"
}

/// A fixture written by scripts/make_fixtures.py from an independent PyTorch (float64) Llama.
public struct PyTorchFixture: Decodable {
    public struct Config: Decodable {
        public let dim, ffn_dim, layers, heads, kv_heads, vocab: Int
        public let theta: Float, eps: Float
        public let rope: String
        public let tied: Bool
    }
    public let config: Config
    public let batchSize: Int, length: Int
    public let inputs, targets: [Int32]
    public let logits: [Double]
    public let loss: Double
    public let parameters, gradients: [String: [Float]]

    enum CodingKeys: String, CodingKey {
        case config, batchSize = "batch", length, inputs, targets, logits, loss, parameters, gradients
    }

    public static let names = ["llama-tiny-gqa-untied-rotate-half", "llama-tiny-mha-tied-adjacent"]

    public static func load(_ name: String) throws -> PyTorchFixture {
        try JSONDecoder().decode(PyTorchFixture.self, from: Data(contentsOf: fixtureURL("\(name).json")))
    }

    public var llamaConfig: LlamaConfig {
        LlamaConfig(
            dim: config.dim, ffnDim: config.ffn_dim, layerCount: config.layers, headCount: config.heads,
            kvHeadCount: config.kv_heads, vocabSize: config.vocab, maxSequenceLength: 64,
            normEpsilon: config.eps, ropeTheta: config.theta, ropeLayout: RoPELayout(rawValue: config.rope)!,
            tiedEmbeddings: config.tied)
    }

    public var batch: TokenBatch { TokenBatch(batchSize: batchSize, length: length, inputs: inputs, targets: targets) }

    /// An fp32 store holding this fixture's parameters.
    public func store(ledger: MemoryLedger = MemoryLedger()) -> FP32ParameterStore {
        let layout = ParameterLayout(llamaConfig)
        let store = FP32ParameterStore(layout: layout, ledger: ledger)
        for (id, info) in layout.parameters.enumerated() {
            let values = parameters[info.name] ?? []
            store.update(id) { w in for i in w.indices where i < values.count { w[i] = values[i] } }
        }
        return store
    }
}
