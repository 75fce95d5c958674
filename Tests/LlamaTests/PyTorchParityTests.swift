import Foundation
import Testing
@testable import Llama
import TensorCore
import TestSupport

@Suite("Parity with PyTorch on tiny random Llamas")
struct PyTorchParityTests {
    @Test("logits, loss and every parameter gradient", arguments: PyTorchFixture.names)
    func parity(name: String) throws {
        let f = try PyTorchFixture.load(name)
        let c = f.llamaConfig, layout = ParameterLayout(c)
        #expect(Set(f.parameters.keys) == Set(layout.parameters.map(\.name)))
        #expect(layout.parameters.allSatisfy { f.parameters[$0.name]?.count == $0.count })
        let store = f.store()
        let model = try LlamaModel(config: c, store: store, ledger: MemoryLedger())
        let batch = f.batch

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
