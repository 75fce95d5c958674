import Foundation
import Testing
import Llama
@testable import Methods
import TensorCore
import TestSupport

@Suite("Schedules, clipping and the non-finite guard")
struct TrainingPiecesTests {
    static func fixture() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtureURL("schedules-and-clipping.json")))
            as! [String: Any]
    }

    @Test(
        "constant, linear and cosine schedules with warmup match transformers' get_scheduler",
        arguments: LRSchedule.Shape.allCases)
    func schedules(shape: LRSchedule.Shape) throws {
        let expected = try Self.fixture()[shape.rawValue] as! [Double]
        let schedule = LRSchedule(shape, peak: 3e-4, warmup: 10, total: 100)
        for (step, rate) in expected.enumerated() {
            #expect(
                abs(schedule.rate(at: step) - rate) <= 1e-12,
                "\(shape) step \(step): \(schedule.rate(at: step)) vs \(rate)")
        }
    }

    @Test("global norm clipping matches torch's clip_grad_norm_")
    func clipping() throws {
        let clip = try Self.fixture()["clip"] as! [String: Any]
        let grads = (clip["grads"] as! [[Double]]).flatMap { $0 },
            clipped = (clip["clipped"] as! [[Double]]).flatMap { $0 }
        // Any layout with at least that many floats: the values sit in its slab, the rest stays zero.
        let layout = ParameterLayout(
            LlamaConfig(
                dim: 16, ffnDim: 16, layerCount: 1, headCount: 2, kvHeadCount: 2, vocabSize: 40, maxSequenceLength: 8))
        let slab = GradientSlab(layout: layout, ledger: MemoryLedger())
        for (i, g) in grads.enumerated() { slab.slab.pointer[i] = Float(g) }
        let norm = GradientClipping.clip(slab, maxNorm: clip["max_norm"] as! Double)
        #expect(abs(norm - (clip["norm"] as! Double)) <= 1e-6 * norm)
        for (i, c) in clipped.enumerated() {
            #expect(abs(Double(slab.slab.pointer[i]) - c) <= 1e-6 * max(1e-3, abs(c)))
        }
        // Below the limit nothing changes.
        let before = Array(slab.slab.buffer)
        GradientClipping.clip(slab, maxNorm: 10)
        #expect(Array(slab.slab.buffer) == before)
    }

    @Test("the non-finite guard skips and counts bad steps, and stops after K in a row")
    func nonFiniteGuard() throws {
        var guardian = NonFiniteGuard(limit: 3)
        #expect(try guardian.admit(loss: 1, gradientNorm: 2, step: 1))
        #expect(try !guardian.admit(loss: .nan, gradientNorm: 2, step: 2))
        #expect(try !guardian.admit(loss: 1, gradientNorm: .infinity, step: 3))
        #expect(try guardian.admit(loss: 1, gradientNorm: 2, step: 4))  // a good step resets the run
        #expect(guardian.skipped == 2 && guardian.consecutive == 0)
        _ = try guardian.admit(loss: .nan, gradientNorm: 1, step: 5)
        _ = try guardian.admit(loss: .nan, gradientNorm: 1, step: 6)
        let error = try #require(throws: MethodError.self) {
            try guardian.admit(loss: .nan, gradientNorm: 1, step: 7)
        }
        #expect(
            error.message.contains("3 non-finite steps in a row") && error.message.contains("Lower the learning rate"))
    }
}
