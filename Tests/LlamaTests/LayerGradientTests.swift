import Testing
@testable import Llama
import TensorCore

/// Every layer's hand-written backward against central finite differences of the Double
/// reference, for the objective Σ r ⊙ y with a fixed random r.
@Suite("Layer backward passes match finite differences")
struct LayerGradientTests {
    static let bound = 1e-4

    @Test("RMSNorm: dx and dw, scaling by w and by 1 + w", arguments: [Float(0), 1])
    func rmsNorm(offset: Float) {
        let (n, d) = (3, 8)
        let x = randomFloats(n * d, seed: 1, scale: 2), w = randomFloats(d, seed: 2), r = randomFloats(n * d, seed: 3)
        var y = [Float](repeating: 0, count: n * d), rstd = [Float](repeating: 0, count: n)
        var dx = [Float](repeating: 0, count: n * d), dw = [Float](repeating: 0, count: d)
        RMSNorm.forward(x, w, &y, rstd: &rstd, rows: n, dim: d, epsilon: 1e-5, offset: offset)
        RMSNorm.backward(r, x, w, rstd: rstd, dx: &dx, dw: &dw, rows: n, dim: d, offset: offset)
        let xd = x.map(Double.init), wd = w.map(Double.init), rd = r.map(Double.init)
        func f(_ x: [Double], _ w: [Double]) -> Double {
            zip(Reference.rmsNorm(x, w, rows: n, dim: d, eps: 1e-5, offset: Double(offset)), rd).reduce(0) {
                $0 + $1.0 * $1.1
            }
        }
        let (fdx, fdw) = finiteDifferences(xd, wd, f)
        #expect(relativeError(dx.map(Double.init), fdx) < Self.bound)
        #expect(relativeError(dw.map(Double.init), fdw) < Self.bound)
    }

    @Test("RoPE: the inverse rotation is the backward", arguments: RoPELayout.allCases)
    func rope(layout: RoPELayout) {
        let (n, heads, e, period) = (6, 2, 8, 3)
        let x = randomFloats(n * heads * e, seed: 4), r = randomFloats(n * heads * e, seed: 5)
        let rope = RoPE(layout: layout, headDim: e, theta: 100, start: 0, count: period)
        var y = x
        y.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: n, heads: heads) }
        let reference = Reference.rope(
            x.map(Double.init), rows: n, heads: heads, headDim: e, theta: 100,
            layout: layout, period: period)
        #expect(relativeError(y.map(Double.init), reference) < 1e-6)
        var dx = r
        dx.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, rows: n, heads: heads, inverse: true) }
        let xd = x.map(Double.init), rd = r.map(Double.init)
        let fd = xd.indices.map { i in
            finiteDifference(xd, i) { x in
                zip(
                    Reference.rope(x, rows: n, heads: heads, headDim: e, theta: 100, layout: layout, period: period), rd
                )
                .reduce(0) { $0 + $1.0 * $1.1 }
            }
        }
        #expect(relativeError(dx.map(Double.init), fd) < Self.bound)
    }

    @Test("Gated activations (SiLU, tanh GELU): d(gate) and d(up)", arguments: [GatedActivation.silu, .geluTanh])
    func gated(activation: GatedActivation) {
        let n = 40
        let g = randomFloats(n, seed: 6, scale: 4), u = randomFloats(n, seed: 7), r = randomFloats(n, seed: 8)
        var h = [Float](repeating: 0, count: n), dg = h, du = h
        let reference = activation == .silu ? Reference.swiglu : Reference.geglu
        activation.forward(gate: g, up: u, &h, count: n)
        #expect(relativeError(h.map(Double.init), reference(g.map(Double.init), u.map(Double.init))) < 1e-6)
        activation.backward(r, gate: g, up: u, dGate: &dg, dUp: &du, count: n)
        let gd = g.map(Double.init), ud = u.map(Double.init), rd = r.map(Double.init)
        func f(_ g: [Double], _ u: [Double]) -> Double {
            zip(reference(g, u), rd).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let (fdg, fdu) = finiteDifferences(gd, ud, f)
        #expect(relativeError(dg.map(Double.init), fdg) < Self.bound)
        #expect(relativeError(du.map(Double.init), fdu) < Self.bound)
    }

    /// (B, T, H, K, E), for packed samples where samples start in every sequence, and whether Gemma 2's scale and
    /// soft-capping apply.
    @Test(
        "Attention: dq, dk, dv with grouped-query heads and the causal mask, with packed samples, with soft-capping",
        arguments: [
            ((2, 4, 4, 2, 4), [], false), ((1, Attention.queryBlock + 6, 2, 1, 4), [], false),  // one block; two
            ((2, Attention.queryBlock + 6, 2, 1, 4), [0, 20, 60, 66], false),  // samples inside a block and across
            ((2, 5, 4, 2, 4), [], true),  // Gemma 2's own scale (here 1/√3) and soft-capping (at 1.5)
        ])
    func attention(shape: (Int, Int, Int, Int, Int), sampleStarts: [Int], gemma: Bool) {
        let (b, t, h, kv, e) = shape
        let (scale, softcap): (Float?, Float?) = gemma ? (1 / Float(3).squareRoot(), 1.5) : (nil, nil)
        let firstKeys: [Int32]? =
            sampleStarts.isEmpty
            ? nil : (0..<b).flatMap { _ in (0..<t).map { i in Int32(sampleStarts.last { $0 <= i }!) } }
        let s = AttentionShape(
            batch: b, queries: t, keys: t, heads: h, kvHeads: kv, headDim: e, queryOffset: 0, firstKeys: firstKeys,
            scale: scale, softcap: softcap)
        let q = randomFloats(b * t * h * e, seed: 9), k = randomFloats(b * t * kv * e, seed: 10)
        let v = randomFloats(b * t * kv * e, seed: 11), r = randomFloats(b * t * h * e, seed: 12)
        var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: b * h * t)
        Attention.forward(q: q, k: k, v: v, out: &out, lse: &lse, s)
        let (qd, kd, vd, rd) = (q.map(Double.init), k.map(Double.init), v.map(Double.init), r.map(Double.init))
        func f(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
            zip(
                Reference.attention(
                    q, k, v, batch: b, length: t, heads: h, kvHeads: kv, headDim: e, firstKeys: firstKeys,
                    scale: scale.map(Double.init), softcap: softcap.map(Double.init)), rd
            )
            .reduce(0) { $0 + $1.0 * $1.1 }
        }
        let reference = Reference.attention(
            qd, kd, vd, batch: b, length: t, heads: h, kvHeads: kv, headDim: e, firstKeys: firstKeys,
            scale: scale.map(Double.init), softcap: softcap.map(Double.init))
        #expect(relativeError(out.map(Double.init), reference) < 1e-6)
        var dq = [Float](repeating: 0, count: q.count), dk = [Float](repeating: 0, count: k.count), dv = dk
        Attention.backward(dOut: r, q: q, k: k, v: v, lse: lse, dq: &dq, dk: &dk, dv: &dv, s)
        // At most 64 elements of each input, spread over it (finite differences of a T² reference are slow).
        func check(_ analytic: [Float], _ x: [Double], _ objective: ([Double]) -> Double) {
            let picks = Array(Set((0..<64).map { $0 * x.count / 64 })).sorted()
            let numeric = picks.map { finiteDifference(x, $0, objective) }
            #expect(relativeError(picks.map { Double(analytic[$0]) }, numeric) < Self.bound)
        }
        check(dq, qd) { f($0, kd, vd) }
        check(dk, kd) { f(qd, $0, vd) }
        check(dv, vd) { f(qd, kd, $0) }
    }

    @Test("Chunked cross-entropy: loss, dx and d(head), with a masked row and uneven chunks")
    func crossEntropy() {
        let (n, d, v) = (5, 6, 11)
        let x = randomFloats(n * d, seed: 13, scale: 2), w = randomFloats(v * d, seed: 14)
        let targets: [Int32] = [3, -1, 10, 0, 7]
        let count = 4.0
        var logits = [Float](repeating: 0, count: 2 * v)
        var dx = [Float](repeating: 0, count: n * d), dw = [Float](repeating: 0, count: v * d)
        var scratch = x  // rows with a target are moved to the front of x
        let rowLoss = targets.withUnsafeBufferPointer { t in
            dx.withUnsafeMutableBufferPointer { dxp in
                dw.withUnsafeMutableBufferPointer { dwp in
                    w.withUnsafeBufferPointer { wp in
                        CrossEntropy.run(
                            x: &scratch, head: .f32(wp.baseAddress!), targets: t, rows: n, dim: d, vocab: v,
                            logits: &logits,
                            chunkRows: 2,
                            gradient: .init(dx: dxp.baseAddress!, dHead: dwp.baseAddress!, scale: Float(1 / count)))
                    }
                }
            }
        }
        let sum = rowLoss.reduce(0, +)
        let xd = x.map(Double.init), wd = w.map(Double.init)
        func f(_ x: [Double], _ w: [Double]) -> Double {
            Reference.crossEntropySum(Reference.linear(x, w, rows: n, out: v, in: d), targets, vocab: v) / count
        }
        #expect(abs(sum / count - f(xd, wd)) < 1e-5 * abs(f(xd, wd)))
        #expect(rowLoss[1] == 0 && dx[d..<2 * d].allSatisfy { $0 == 0 })  // the masked row
        let logitsRef = Reference.linear(xd, wd, rows: n, out: v, in: d)
        for r in [0, 2, 3, 4] {  // each row's loss on its own, at its own index
            let alone = Reference.crossEntropySum(Array(logitsRef[r * v..<(r + 1) * v]), [targets[r]], vocab: v)
            #expect(abs(rowLoss[r] - alone) < 1e-5 * alone)
        }
        let (fdx, fdw) = finiteDifferences(xd, wd, f)
        #expect(relativeError(dx.map(Double.init), fdx) < Self.bound)
        #expect(relativeError(dw.map(Double.init), fdw) < Self.bound)
    }
}
