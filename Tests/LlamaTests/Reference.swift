import Foundation
@testable import Llama
import TensorCore

/// A plain, loop-by-loop Llama in Double: the reference that gradient checks differentiate by
/// finite differences and that the Float model's forward must agree with.
enum Reference {
    static func rmsNorm(
        _ x: [Double], _ w: [Double], rows n: Int, dim d: Int, eps: Double, offset: Double = 0
    ) -> [Double] {
        var y = x
        for r in 0..<n {
            var ss = 0.0
            for i in 0..<d { ss += x[r * d + i] * x[r * d + i] }
            let s = 1 / (ss / Double(d) + eps).squareRoot()
            for i in 0..<d { y[r * d + i] = x[r * d + i] * s * (offset + w[i]) }
        }
        return y
    }

    /// x [n, heads·E]; row r at position start + r mod period.
    static func rope(
        _ x: [Double], rows n: Int, heads: Int, headDim e: Int, theta: Double, layout: RoPELayout,
        period: Int, start: Int = 0
    ) -> [Double] {
        var y = x
        let half = e / 2
        for r in 0..<n {
            let pos = Double(start + r % period)
            for h in 0..<heads {
                for i in 0..<half {
                    let angle = pos * pow(theta, -Double(2 * i) / Double(e))
                    let (ia, ib) = layout == .rotateHalf ? (i, i + half) : (2 * i, 2 * i + 1)
                    let base = r * heads * e + h * e
                    let a = x[base + ia], b = x[base + ib]
                    y[base + ia] = a * cos(angle) - b * sin(angle)
                    y[base + ib] = a * sin(angle) + b * cos(angle)
                }
            }
        }
        return y
    }

    static func swiglu(_ g: [Double], _ u: [Double]) -> [Double] {
        zip(g, u).map { g, u in g / (1 + exp(-g)) * u }
    }

    /// GELU with the tanh approximation times u (GeGLU).
    static func geglu(_ g: [Double], _ u: [Double]) -> [Double] {
        zip(g, u).map { g, u in 0.5 * g * (1 + tanh((2 / Double.pi).squareRoot() * (g + 0.044715 * g * g * g))) * u }
    }

    /// Causal GQA attention, q [B·T, H·E], k, v [B·T, K·E], all at offset 0.
    static func attention(
        _ q: [Double], _ k: [Double], _ v: [Double], batch: Int, length t: Int,
        heads: Int, kvHeads: Int, headDim e: Int, firstKeys: [Int32]? = nil, window: Int? = nil, scale: Double? = nil,
        softcap: Double? = nil
    ) -> [Double] {
        var out = [Double](repeating: 0, count: q.count)
        let qs = heads * e, ks = kvHeads * e, scale = scale ?? 1 / Double(e).squareRoot()
        for b in 0..<batch {
            for h in 0..<heads {
                let kvh = h / (heads / kvHeads)
                for i in 0..<t {
                    let first = max(firstKeys.map { Int($0[b * t + i]) } ?? 0, window.map { i + 1 - $0 } ?? 0)
                    var scores = [Double](repeating: -.infinity, count: i + 1)
                    for j in first...i {
                        var dot = 0.0
                        for d in 0..<e { dot += q[(b * t + i) * qs + h * e + d] * k[(b * t + j) * ks + kvh * e + d] }
                        scores[j] = softcap.map { $0 * tanh(dot * scale / $0) } ?? dot * scale
                    }
                    let m = scores.max()!
                    let ex = scores.map { exp($0 - m) }
                    let sum = ex.reduce(0, +)
                    for j in first...i {
                        for d in 0..<e {
                            out[(b * t + i) * qs + h * e + d] += ex[j] / sum * v[(b * t + j) * ks + kvh * e + d]
                        }
                    }
                }
            }
        }
        return out
    }

    /// y [n, out] = x [n, in] · Wᵀ
    static func linear(_ x: [Double], _ w: [Double], rows n: Int, out: Int, in inp: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * out)
        for r in 0..<n {
            for o in 0..<out {
                var s = 0.0
                for i in 0..<inp { s += x[r * inp + i] * w[o * inp + i] }
                y[r * out + o] = s
            }
        }
        return y
    }

    /// Sum over scored rows of −log softmax(logits)[target].
    static func crossEntropySum(_ logits: [Double], _ targets: [Int32], vocab v: Int) -> Double {
        var total = 0.0
        for (r, t) in targets.enumerated() where t >= 0 {
            let row = logits[r * v..<(r + 1) * v]
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            total += lse - row[r * v + Int(t)]
        }
        return total
    }

    /// Logits [N, V] of the whole model with weights `w` (a Double copy of the slab).
    static func logits(_ c: LlamaConfig, _ w: [Double], _ batch: TokenBatch) -> [Double] {
        let layout = ParameterLayout(c), n = batch.rowCount, d = c.dim
        func p(_ id: ParameterID) -> [Double] {
            let info = layout.parameters[id]
            return Array(w[info.offset..<info.offset + info.count])
        }
        let table = p(layout.embedding)
        var x = batch.inputs.flatMap { table[Int($0) * d..<(Int($0) + 1) * d] }.map { $0 * Double(c.embeddingScale) }
        let eps = Double(c.normEpsilon), offset = Double(c.normOffset)
        func rmsNorm(_ x: [Double], _ w: [Double], rows n: Int, dim d: Int, eps: Double) -> [Double] {
            Reference.rmsNorm(x, w, rows: n, dim: d, eps: eps, offset: offset)
        }
        /// y through an output norm, where the layer has one.
        func outputNorm(_ y: [Double], _ id: ParameterID?) -> [Double] {
            id.map { rmsNorm(y, p($0), rows: n, dim: d, eps: eps) } ?? y
        }
        /// y + b on every row (y unchanged without a bias).
        func biased(_ y: [Double], _ b: ParameterID?) -> [Double] {
            guard let b else { return y }
            let bias = p(b)
            return y.enumerated().map { $1 + bias[$0 % bias.count] }
        }
        for (index, l) in layout.layers.enumerated() {
            let theta = Double(c.turnsLocally(layer: index) ? c.gemma.localRopeTheta! : c.ropeTheta)
            let xn = rmsNorm(x, p(l.attentionNorm), rows: n, dim: d, eps: eps)
            /// Qwen3's per-head norm of queries or keys, where the configuration has it.
            func headNorm(_ y: [Double], _ id: ParameterID?, heads: Int) -> [Double] {
                id.map { rmsNorm(y, p($0), rows: n * heads, dim: c.headDim, eps: eps) } ?? y
            }
            let q = rope(
                headNorm(
                    biased(linear(xn, p(l.query), rows: n, out: c.queryDim, in: d), l.queryBias), l.queryNorm,
                    heads: c.headCount),
                rows: n, heads: c.headCount, headDim: c.headDim, theta: theta, layout: c.ropeLayout,
                period: batch.length)
            let k = rope(
                headNorm(
                    biased(linear(xn, p(l.key), rows: n, out: c.kvDim, in: d), l.keyBias), l.keyNorm,
                    heads: c.kvHeadCount),
                rows: n, heads: c.kvHeadCount, headDim: c.headDim, theta: theta, layout: c.ropeLayout,
                period: batch.length)
            let v = biased(linear(xn, p(l.value), rows: n, out: c.kvDim, in: d), l.valueBias)
            let att = attention(
                q, k, v, batch: batch.batchSize, length: batch.length, heads: c.headCount,
                kvHeads: c.kvHeadCount, headDim: c.headDim, window: c.window(layer: index),
                scale: Double(c.attentionScale), softcap: c.gemma.attentionSoftcap.map(Double.init))
            x = zip(x, outputNorm(linear(att, p(l.output), rows: n, out: d, in: c.queryDim), l.attentionOutputNorm))
                .map(+)
            let xn2 = rmsNorm(x, p(l.ffnNorm), rows: n, dim: d, eps: eps)
            let h = (c.gemma.geluGate ? geglu : swiglu)(
                linear(xn2, p(l.gate), rows: n, out: c.ffnDim, in: d),
                linear(xn2, p(l.up), rows: n, out: c.ffnDim, in: d))
            x = zip(x, outputNorm(linear(h, p(l.down), rows: n, out: d, in: c.ffnDim), l.ffnOutputNorm)).map(+)
        }
        let xf = rmsNorm(x, p(layout.finalNorm), rows: n, dim: d, eps: eps)
        let logits = linear(xf, p(layout.head), rows: n, out: c.vocabSize, in: d)
        return c.gemma.logitSoftcap.map { cap in logits.map { Double(cap) * tanh($0 / Double(cap)) } } ?? logits
    }

    static func meanLoss(_ c: LlamaConfig, _ w: [Double], _ batch: TokenBatch) -> Double {
        crossEntropySum(logits(c, w, batch), batch.targets, vocab: c.vocabSize) / Double(batch.scoredCount)
    }
}

/// Central finite difference of `f` with respect to `x[i]`, in Double.
func finiteDifference(_ x: [Double], _ i: Int, h: Double = 1e-5, _ f: ([Double]) -> Double) -> Double {
    var plus = x, minus = x
    plus[i] += h
    minus[i] -= h
    return (f(plus) - f(minus)) / (2 * h)
}

/// Central-difference gradients of f(a, b) with respect to each argument.
func finiteDifferences(_ a: [Double], _ b: [Double], _ f: ([Double], [Double]) -> Double) -> ([Double], [Double]) {
    (
        a.indices.map { i in finiteDifference(a, i) { f($0, b) } },
        b.indices.map { i in finiteDifference(b, i) { f(a, $0) } }
    )
}

/// ‖a − b‖ / max(‖b‖, floor).
func relativeError(_ a: [Double], _ b: [Double], floor: Double = 1e-8) -> Double {
    let diff = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    let norm = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return diff / max(norm, floor)
}

/// Deterministic test values in [-scale, scale).
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    let rng = Philox(seed: seed)
    return (0..<n).map { (rng.uniform(stream: 0, index: UInt64($0)) * 2 - 1) * scale }
}

/// Tiny configurations covering GQA, tied and untied heads and both RoPE layouts.
enum TinyConfigs {
    static let gqaUntiedRotateHalf = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false)
    static let mhaTiedAdjacent = LlamaConfig(
        dim: 12, ffnDim: 20, layerCount: 2, headCount: 3, kvHeadCount: 3, vocabSize: 18, maxSequenceLength: 16,
        normEpsilon: 1e-5, ropeTheta: 500, ropeLayout: .adjacentPairs, tiedEmbeddings: true)
    /// Qwen2's q/k/v biases on the GQA shape.
    static let gqaBiases = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false, attentionBias: true)
    /// A sliding window of 3 keys (the batch has 5 positions) in the first layer only.
    static let slidingWindow = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false, slidingWindow: 3,
        slidingLayers: [true, false])
    /// Qwen3's per-head query and key norms, with a head dimension of 6 apart from dim / heads (queries 24 wide).
    static let queryKeyNorm = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-6, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: true, explicitHeadDim: 6,
        queryKeyNorm: true)
    /// Gemma 2: (1 + w) norms, GeGLU, √D embedding scale, output norms, its own attention scale, attention and logit
    /// soft-capping small enough to bend the scores, and sliding and global layers alternating.
    static let gemma2 = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-6, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: true, slidingWindow: 3,
        slidingLayers: [true, false], explicitHeadDim: 6,
        gemma: .init(
            normsScaleFromOne: true, geluGate: true, scalesEmbedding: true, outputNorms: true,
            queryPreAttentionScalar: 8, attentionSoftcap: 1.5, logitSoftcap: 2.5))
    /// Gemma 3: Gemma 2 without soft-capping, with (1 + w) query and key norms and a local RoPE base in the sliding
    /// layer.
    static let gemma3 = LlamaConfig(
        dim: 16, ffnDim: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, vocabSize: 20, maxSequenceLength: 16,
        normEpsilon: 1e-6, ropeTheta: 100_000, ropeLayout: .rotateHalf, tiedEmbeddings: true, slidingWindow: 3,
        slidingLayers: [true, false], explicitHeadDim: 6, queryKeyNorm: true,
        gemma: .init(
            normsScaleFromOne: true, geluGate: true, scalesEmbedding: true, outputNorms: true,
            queryPreAttentionScalar: 6, localRopeTheta: 50))
    static let all = [gqaUntiedRotateHalf, mhaTiedAdjacent, gqaBiases, slidingWindow, queryKeyNorm, gemma2, gemma3]

    /// A model with weights large enough that every path matters (std 0.3, norms scaling by 0.6–1.4: for Gemma's
    /// 1 + w, w in −0.4…0.4).
    static func model(_ c: LlamaConfig, seed: UInt64 = 7) throws -> LlamaModel {
        let store = FP32ParameterStore(layout: ParameterLayout(c), ledger: MemoryLedger())
        store.initializeRandomly(Philox(seed: seed), std: 0.3)
        for (id, info) in store.layout.parameters.enumerated() where info.role.kind == .scale {
            store.update(id) { w in for i in w.indices { w[i] = 1 - c.normOffset + 0.2 * Float(i % 5) - 0.4 } }
        }
        for (id, info) in store.layout.parameters.enumerated() where info.role.kind == .bias {
            store.update(id) { w in for i in w.indices { w[i] = 0.1 * Float(i % 7) - 0.3 } }
        }
        return try LlamaModel(config: c, store: store, ledger: MemoryLedger())
    }

    /// B = 2, T = 5, with one masked target.
    static func batch(_ c: LlamaConfig, seed: UInt64 = 3) -> TokenBatch {
        let rng = Philox(seed: seed)
        let ids = (0..<12).map { Int32(rng.bits(stream: 0, index: UInt64($0)) % UInt32(c.vocabSize)) }
        var targets = Array(ids[1..<6]) + Array(ids[7..<12])
        targets[2] = -1
        return TokenBatch(batchSize: 2, length: 5, inputs: Array(ids[0..<5]) + Array(ids[6..<11]), targets: targets)
    }
}

extension FP32ParameterStore {
    /// The slab as Double.
    var doubles: [Double] { slab.buffer.map(Double.init) }
}
