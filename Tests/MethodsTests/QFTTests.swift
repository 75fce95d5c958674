import Foundation
import Testing
import Formats
import Llama
import TensorCore
import TestSupport
@testable import Methods

@Suite("QFT")
struct QFTTests {
    static let config = LlamaConfig(
        dim: 64, ffnDim: 128, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 96, maxSequenceLength: 32)

    static func store(
        _ source: any ParameterStore, _ settings: DenseSparseStore.Settings = .init()
    ) throws -> DenseSparseStore {
        try DenseSparseStore(converting: source, settings: settings, seed: 1, ledger: MemoryLedger())
    }

    @Test(
        """
        conversion keeps exactly the 1% largest magnitudes in fp32 and every other value within half a step of its \
        row's scale
        """
    )
    func conversion() throws {
        let fp32 = FP32ParameterStore(layout: ParameterLayout(Self.config), ledger: MemoryLedger())
        fp32.initializeRandomly(Philox(seed: 4), std: 0.05)
        let store = try Self.store(fp32)
        var checked = 0
        for (id, info) in fp32.layout.parameters.enumerated() {
            let w = Array(fp32.view(id)), d = store.withFloats(id) { Array($0) }
            guard store.isQuantized(id) else {
                #expect(info.role.kind == .scale && d == w)
                continue
            }
            let k = Int(Double(info.count) * 0.01)
            let outliers = Set(w.indices.sorted { abs(w[$0]) > abs(w[$1]) }.prefix(k))
            #expect(w.indices.filter { d[$0] == w[$0] }.count >= k)
            for i in outliers { #expect(d[i] == w[i], "\(info.name) outlier \(i)") }
            let columns = info.shape[1]
            for r in 0..<info.shape[0] {
                let row = (r * columns..<(r + 1) * columns).filter { !outliers.contains($0) }
                let step = row.map { abs(w[$0]) }.max()! / 127
                for i in row { #expect(abs(d[i] - w[i]) <= step * 0.5 * (1 + 1e-5), "\(info.name) [\(i)]") }
            }
            checked += 1
        }
        #expect(checked == 1 + 7 * Self.config.layerCount)  // the tied embedding and seven matrices per layer
    }

    /// Lion moves every weight by ±η, often far less than an INT8 step s. Re-encoding with stochastic rounding is
    /// exact in expectation, so a hundred steps of η = s/100 must move the weights by s on average; nearest
    /// rounding would leave them where they are. Each weight's own path is noisy (σ ≈ √(T·η·s) = s after T steps),
    /// so the mean over the model's ≈ 60 000 quantized weights has σ ≈ s/245 ≈ 0.4% of the drift.
    @Test(
        "stochastic rounding: 100 updates of a hundredth of a step move the weights by one step on average (within 3%)")
    func smallUpdatesLand() throws {
        let fp32 = FP32ParameterStore(layout: ParameterLayout(Self.config), ledger: MemoryLedger())
        fp32.initializeRandomly(Philox(seed: 5), std: 0.05)
        let store = try Self.store(fp32)
        let ids = fp32.layout.parameters.indices.filter(store.isQuantized)
        let before = ids.map { id in store.withFloats(id) { Array($0) } }
        let rowSteps = ids.flatMap { id in
            let c = fp32.layout.parameters[id].shape[1]
            return stride(from: 0, to: before[ids.firstIndex(of: id)!].count, by: c).map { start in
                before[ids.firstIndex(of: id)!][start..<start + c].map(abs).max()! / 127
            }
        }
        let eta = rowSteps.reduce(0, +) / Float(rowSteps.count) / 100, steps = 100
        for _ in 0..<steps {
            for id in ids { store.update(id) { w in for i in w.indices { w[i] += eta } } }
        }
        var drift = 0.0, n = 0
        for (k, id) in ids.enumerated() {
            store.withFloats(id) { w in for i in w.indices { drift += Double(w[i] - before[k][i]) } }
            n += before[k].count
        }
        let mean = drift / Double(n), expected = Double(eta) * Double(steps)
        #expect(abs(mean - expected) <= 0.03 * expected, "mean drift \(mean), η·T = \(expected)")
    }

    /// Real gradients of stories260K on TinyStories text, at fixed weights, feed fp32 Lion and QFT's Lion side by side
    /// for five steps; the update is −η·sign(c), so the signs are the update. The paper's theory says ≥ 95% agree.
    @Test(
        "Lion update signs with INT8 momentum (and INT8 gradients) agree with fp32 Lion on ≥ 95% of coordinates",
        .enabled(if: SharedReal.available))
    func signAgreement() throws {
        let loaded = try ModelFile.load(SharedReal.model, tokenizer: SharedReal.tokenizer, ledger: MemoryLedger())
        let model = loaded.model, layout = model.layout
        let text = try String(contentsOfFile: SharedReal.tinyStories, encoding: .utf8)
        let ids = loaded.tokenizer.encode(text).map { Int32($0) }
        let batches = (0..<5).map { b in
            TokenBatch(sequences: (0..<4).map { s in Array(ids[(b * 4 + s) * 40..<(b * 4 + s) * 40 + 41]) })
        }
        let quantized = { (id: ParameterID) in layout.parameters[id].role.kind == .matrix },
            block = QFT.Settings().stateBlock
        let fp32 = Lion(layout: layout, groups: ParameterGroups(weightDecay: 0), ledger: MemoryLedger())
        let int8 = QuantizedLion(
            layout: layout, quantized: quantized, blockSize: block, groups: ParameterGroups(weightDecay: 0), seed: 1,
            ledger: MemoryLedger())
        let both = QuantizedLion(
            layout: layout, quantized: quantized, blockSize: block, groups: ParameterGroups(weightDecay: 0), seed: 1,
            ledger: MemoryLedger())
        var agreement: [(momentum: Double, gradient: Double)] = []
        for (t, batch) in batches.enumerated() {
            let g = GradientSlab(layout: layout, ledger: MemoryLedger())
            _ = try model.lossAndGradients(batch, into: g)
            var same = (0, 0), total = 0
            for id in layout.parameters.indices where quantized(id) {
                let n = layout.parameters[id].count
                var reference = [Float](repeating: 0, count: n), a = reference, b = reference, gq = reference
                var q = [Int8](repeating: 0, count: n),
                    scales = [Float](repeating: 0, count: Int8Blocks.blockCount(n, blockSize: block))
                Int8Blocks.quantize(
                    g.view(id).baseAddress!, count: n, blockSize: block, into: &q, scales: &scales, rounding: .nearest)
                Int8Blocks.dequantize(q, scales: scales, count: n, blockSize: block, into: &gq)
                reference.withUnsafeMutableBufferPointer {
                    fp32.update(id, weights: $0, gradient: g.view(id).baseAddress!, learningRate: 1, step: t + 1)
                }
                a.withUnsafeMutableBufferPointer {
                    int8.update(id, weights: $0, gradient: g.view(id).baseAddress!, learningRate: 1, step: t + 1)
                }
                b.withUnsafeMutableBufferPointer {
                    both.update(id, weights: $0, gradient: gq, learningRate: 1, step: t + 1)
                }
                // coordinates with a gradient (unused embedding rows have none)
                for i in 0..<n where reference[i] != 0 {
                    total += 1
                    same.0 += a[i] == reference[i] ? 1 : 0
                    same.1 += b[i] == reference[i] ? 1 : 0
                }
            }
            agreement.append((Double(same.0) / Double(total), Double(same.1) / Double(total)))
        }
        let report = agreement.map { String(format: "%.4f/%.4f", $0.momentum, $0.gradient) }.joined(separator: ", ")
        #expect(
            agreement.allSatisfy { $0.momentum >= 0.95 && $0.gradient >= 0.95 },
            "per step (INT8 momentum / + INT8 gradient): \(report)")
        print("QFT sign agreement with fp32 Lion per step (INT8 momentum / + INT8 gradient): \(report)")
    }

    @Test("settings out of range are refused before any weight is converted")
    func badSettings() throws {
        let fp32 = FP32ParameterStore(layout: ParameterLayout(Self.config), ledger: MemoryLedger())
        for (fraction, block) in [(0.6, 0), (-0.1, 0), (0.01, -1)] {
            var s = DenseSparseStore.Settings()
            (s.outlierFraction, s.blockSize) = (fraction, block)
            #expect(throws: MethodError.self) { try Self.store(fp32, s) }
        }
        var q = QFT.Settings()
        q.stateBlock = 0
        #expect(throws: MethodError.self) { try q.validate() }
    }
}
