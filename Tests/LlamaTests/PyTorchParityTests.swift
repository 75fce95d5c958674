import Foundation
import Testing
@testable import Llama
import TensorCore

/// A fixture written by scripts/make_fixtures.py from an independent PyTorch (float64) Llama.
struct PyTorchFixture: Decodable {
    struct Config: Decodable {
        let dim, ffn_dim, layers, heads, kv_heads, vocab: Int
        let theta: Float, eps: Float
        let rope: String
        let tied: Bool
    }
    let config: Config
    let batch, length: Int
    let inputs, targets: [Int32]
    let logits: [Double]
    let loss: Double
    let parameters, gradients: [String: [Float]]

    static let names = ["llama-tiny-gqa-untied-rotate-half", "llama-tiny-mha-tied-adjacent"]

    static func load(_ name: String) throws -> PyTorchFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/\(name).json")
        return try JSONDecoder().decode(PyTorchFixture.self, from: Data(contentsOf: url))
    }

    var llamaConfig: LlamaConfig {
        LlamaConfig(dim: config.dim, ffnDim: config.ffn_dim, layerCount: config.layers, headCount: config.heads,
                    kvHeadCount: config.kv_heads, vocabSize: config.vocab, maxSequenceLength: 64,
                    normEpsilon: config.eps, ropeTheta: config.theta, ropeLayout: RoPELayout(rawValue: config.rope)!,
                    tiedEmbeddings: config.tied)
    }
}

@Suite("Parity with PyTorch on tiny random Llamas")
struct PyTorchParityTests {
    @Test("logits, loss and every parameter gradient", arguments: PyTorchFixture.names)
    func parity(name: String) throws {
        let f = try PyTorchFixture.load(name)
        let c = f.llamaConfig, layout = ParameterLayout(c)
        let store = FP32ParameterStore(layout: layout, ledger: MemoryLedger())
        #expect(Set(f.parameters.keys) == Set(layout.parameters.map(\.name)))
        for (id, info) in layout.parameters.enumerated() {
            let values = try #require(f.parameters[info.name])
            #expect(values.count == info.count)
            store.update(id) { w in for i in w.indices { w[i] = values[i] } }
        }
        let model = try LlamaModel(config: c, store: store, ledger: MemoryLedger())
        let batch = TokenBatch(batchSize: f.batch, length: f.length, inputs: f.inputs, targets: f.targets)

        let logits = try model.logits(batch).map(Double.init)
        let maxLogitError = zip(logits, f.logits).map { abs($0 - $1) }.max()!
        #expect(maxLogitError < 2e-5, "max |logit − PyTorch| = \(maxLogitError)")

        for checkpointing in [false, true] {
            let grads = GradientSlab(layout: layout, ledger: MemoryLedger())
            let loss = try model.lossAndGradients(batch, into: grads, checkpointing: checkpointing)
            #expect(abs(loss.mean - f.loss) < 1e-6 * f.loss, "loss \(loss.mean) vs PyTorch \(f.loss)")
            for (id, info) in layout.parameters.enumerated() {
                let expected = try #require(f.gradients[info.name]).map(Double.init)
                let error = relativeError(grads.view(id).map(Double.init), expected)
                #expect(error < 1e-5, "\(info.name): relative gradient error \(error)")
            }
        }
    }
}
