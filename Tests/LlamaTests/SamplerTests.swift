import Foundation
import Testing
import Llama

@Suite("Sampling")
struct SamplerTests {
    /// Probabilities 0.5, 0.3, 0.15, 0.05.
    static let logits: [Float] = [0.5, 0.3, 0.15, 0.05].map { Float(log($0)) }

    func frequencies(_ sampler: Sampler, draws: Int) -> [Double] {
        var s = sampler, counts = [Double](repeating: 0, count: Self.logits.count)
        for _ in 0..<draws { counts[Int(s.sample(Self.logits))] += 1 }
        return counts.map { $0 / Double(draws) }
    }

    @Test("temperature 0 is greedy and takes the first maximum")
    func greedy() {
        var s = Sampler(temperature: 0, seed: 1)
        #expect(s.sample(Self.logits) == 0)
        #expect(s.sample([1, 3, 3, 2]) == 1)
    }

    @Test("at temperature 1 tokens are drawn with their softmax probabilities")
    func temperatureOne() {
        let f = frequencies(Sampler(temperature: 1, seed: 2), draws: 20_000)
        // Standard error ≤ 0.0036; bounds are 5 of them.
        for (observed, expected) in zip(f, [0.5, 0.3, 0.15, 0.05]) { #expect(abs(observed - expected) < 0.018) }
    }

    @Test("top-p keeps only the smallest set that reaches p, renormalised")
    func nucleus() {
        let f = frequencies(Sampler(temperature: 1, topP: 0.7, seed: 3), draws: 20_000)
        #expect(f[2] == 0 && f[3] == 0)
        #expect(abs(f[0] - 0.625) < 0.02)  // 0.5 / 0.8
    }

    @Test("the same seed gives the same draws, another seed other draws")
    func seeded() {
        func draws(_ seed: UInt64) -> [Int32] {
            var s = Sampler(temperature: 1, seed: seed)
            return (0..<50).map { _ in s.sample(Self.logits) }
        }
        #expect(draws(4) == draws(4))
        #expect(draws(4) != draws(5))
    }
}
