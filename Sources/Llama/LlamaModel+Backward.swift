import TensorCore

extension LlamaModel {
    /// Mean next-token loss of `batch`, and its gradient added into `sink` parameter by parameter
    /// as each becomes final (head and final norm first, then layers L−1 … 0, the embedding last).
    ///
    /// - Parameter checkpointing: keep only each layer's input during forward and recompute the
    ///   layer's inside during backward (one extra layer forward per layer; activations drop from
    ///   L layers' worth to one).
    public func lossAndGradients(
        _ batch: TokenBatch, into sink: any GradientSink, checkpointing: Bool = false
    ) throws -> LossResult {
        try check(batch)
        let c = config, s = PassShape(batch), n = s.rows, nd = n * c.dim
        let scored = batch.scoredCount

        let b = buffers(.training(checkpointing: checkpointing), batch)
        let acts = b.layers, ws = b.workspace, rstdFinal = b.rstdFinal, residuals = b.residuals
        let rope = RoPE(c, batch: batch)
        func residual(_ l: Int) -> UnsafeMutablePointer<Float> { residuals.pointer + l * nd }
        func kv(_ a: LayerActivations) -> KVTarget { KVTarget(k: a.k!, v: a.v!, keys: s.length, offset: 0) }

        embed(batch.inputs, into: residual(0))
        for l in 0..<c.layerCount {
            let a = acts[checkpointing ? 0 : l]
            layerForward(l, x: residual(l), out: residual(l + 1), a, s, kv: kv(a), rope: rope, ws)
        }

        // Head: the loss and d(final norm output), then the final norm's backward into dResidual.
        let dNormed = ws.dNormed!, dResidual = ws.dResidual!
        dNormed.update(repeating: 0, count: nd)
        dResidual.update(repeating: 0, count: nd)
        let sum = finalNormAndLoss(
            residual(c.layerCount), batch, s, ws,
            gradient: (
                rstdFinal, dNormed, sink.wants(layout.head) ? sink.accumulator(for: layout.head) : nil,
                scored > 0 ? 1 / Float(scored) : 0
            )
        ).reduce(0, +)
        if !c.tiedEmbeddings { sink.finish(layout.head) }
        withFloats(layout.finalNorm) { w in
            RMSNorm.backward(
                dNormed, residual(c.layerCount), w, rstd: rstdFinal, dx: dResidual,
                dw: sink.accumulator(for: layout.finalNorm), rows: n, dim: c.dim)
        }
        sink.finish(layout.finalNorm)

        for l in stride(from: c.layerCount - 1, through: 0, by: -1) {
            let a = acts[checkpointing ? 0 : l]
            if checkpointing {
                // Layer l+1's input is no longer needed: let the recomputation overwrite it.
                layerForward(l, x: residual(l), out: residual(l + 1), a, s, kv: kv(a), rope: rope, ws)
            }
            layerBackward(l, x: residual(l), dx: dResidual, a, s, rope: rope, ws, sink)
        }
        if sink.wants(layout.embedding) {
            batch.inputs.withUnsafeBufferPointer {
                Embedding.backward($0, dResidual, dTable: sink.accumulator(for: layout.embedding), dim: c.dim)
            }
        }
        sink.finish(layout.embedding)
        return LossResult(sum: sum, count: scored)
    }

    /// dx [N, D]: on entry the gradient of layer l's output, on return that of its input x.
    /// Adds every weight gradient of layer l into `sink` and finishes them.
    func layerBackward(
        _ l: Int, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, _ a: LayerActivations, _ s: PassShape,
        rope: RoPE, _ ws: Workspace, _ sink: any GradientSink
    ) {
        let p = layout.layers[l], c = config, n = s.rows
        let dNormed = ws.dNormed!, dHidden = ws.dHidden!, dGate = ws.dGate!, dq = ws.dq!, dk = ws.dk!, dv = ws.dv!

        // the fp32 scratch from the bf16 bits this layer kept (attention's for a sink that reads x)
        if let kept = a.kept {
            for (bits, floats, count) in [
                (kept.gate, a.gate, n * c.ffnDim), (kept.up, a.up, n * c.ffnDim),
                (kept.attention, a.attention, n * c.queryDim),
            ] {
                Conversions.fromBF16(bits, floats, count: count)
            }
        }
        // MLP: out = h + down(SiLU(gate(x̂)) ⊙ up(x̂)), x̂ = norm(h).
        withFloats(p.ffnNorm) { w in RMSNorm.apply(a.residualMid, w, rstd: a.rstdFFN, ws.normed, rows: n, dim: c.dim) }
        SwiGLU.forward(gate: a.gate, up: a.up, ws.hidden, count: n * c.ffnDim)
        projectBackward(p.down, dy: dx, x: ws.hidden, rows: n, dx: dHidden, accumulate: false, sink)
        SwiGLU.backward(dHidden, gate: a.gate, up: a.up, dGate: dGate, dUp: ws.hidden, count: n * c.ffnDim)
        projectBackward(p.gate, dy: dGate, x: ws.normed, rows: n, dx: dNormed, accumulate: false, sink)
        projectBackward(p.up, dy: ws.hidden, x: ws.normed, rows: n, dx: dNormed, accumulate: true, sink)
        withFloats(p.ffnNorm) { w in
            RMSNorm.backward(
                dNormed, a.residualMid, w, rstd: a.rstdFFN, dx: dx,
                dw: sink.accumulator(for: p.ffnNorm), rows: n, dim: c.dim)
        }

        // Attention: h = x + o(Attn(rope(q(x̂)), rope(k(x̂)), v(x̂))), x̂ = norm(x).
        projectBackward(
            p.output, dy: dx, x: a.attention, bits: a.kept?.attention, rows: n, dx: dNormed, accumulate: false, sink)
        dk.update(repeating: 0, count: n * c.kvDim)
        dv.update(repeating: 0, count: n * c.kvDim)
        Attention.backward(
            dOut: dNormed, q: a.q, k: a.k!, v: a.v!, lse: a.lse, dq: dq, dk: dk, dv: dv,
            attentionShape(s, KVTarget(k: a.k!, v: a.v!, keys: s.length, offset: 0), layer: l), bf16: bf16?.kernel,
            ledger: ledger
        )
        rope.apply(dq, rows: n, heads: c.headCount, inverse: true)
        rope.apply(dk, rows: n, heads: c.kvHeadCount, inverse: true)
        if let norms = a.queryKeyNorm, let qNorm = p.queryNorm, let kNorm = p.keyNorm {
            // through the per-head norms, in place: dq and dk become the projections' output gradients
            for (id, d, x, rstd, heads) in [
                (qNorm, dq, norms.q, norms.rstdQ, c.headCount), (kNorm, dk, norms.k, norms.rstdK, c.kvHeadCount),
            ] {
                withFloats(id) { w in
                    RMSNorm.backward(
                        d, x, w, rstd: rstd, dx: d, dw: sink.accumulator(for: id), rows: n * heads, dim: c.headDim,
                        accumulate: false)
                }
            }
        }
        withFloats(p.attentionNorm) { w in RMSNorm.apply(x, w, rstd: a.rstdAttention, ws.normed, rows: n, dim: c.dim) }
        projectBackward(p.query, dy: dq, x: ws.normed, rows: n, dx: dNormed, accumulate: false, sink)
        projectBackward(p.key, dy: dk, x: ws.normed, rows: n, dx: dNormed, accumulate: true, sink)
        projectBackward(p.value, dy: dv, x: ws.normed, rows: n, dx: dNormed, accumulate: true, sink)
        biasBackward(p.queryBias, dy: dq, rows: n, sink)
        biasBackward(p.keyBias, dy: dk, rows: n, sink)
        biasBackward(p.valueBias, dy: dv, rows: n, sink)
        withFloats(p.attentionNorm) { w in
            RMSNorm.backward(
                dNormed, x, w, rstd: a.rstdAttention, dx: dx,
                dw: sink.accumulator(for: p.attentionNorm), rows: n, dim: c.dim)
        }
        for id in p.all { sink.finish(id) }
    }

    /// For y = x·Wᵀ: dx (+)= dy·W and dW += dyᵀ·x (into the sink). dy [n, out], x [n, in]; `bits`: x's bf16 bits where
    /// they are kept, the dW product's operand then (x itself is not rounded again).
    /// For y = x·Wᵀ + b: db += Σ_rows dy (dy [n, width]).
    func biasBackward(_ id: ParameterID?, dy: UnsafePointer<Float>, rows n: Int, _ sink: any GradientSink) {
        guard let id, sink.wants(id) else { return }
        let width = layout.parameters[id].count, db = sink.accumulator(for: id)
        for r in 0..<n {
            for j in 0..<width { db[j] += dy[r * width + j] }
        }
    }

    func projectBackward(
        _ id: ParameterID, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, bits: UnsafePointer<UInt16>? = nil,
        rows n: Int,
        dx: UnsafeMutablePointer<Float>, accumulate: Bool, _ sink: any GradientSink
    ) {
        let shape = layout.parameters[id].shape, (out, inp) = (shape[0], shape[1])
        let dyOperand = activation(dy, count: n * out)  // rounded once for both products
        withWeight(id) { w in
            multiply(m: n, n: inp, k: out, dyOperand, lda: out, w, ldb: inp, dx, ldc: inp, beta: accumulate ? 1 : 0)
        }
        guard sink.wants(id), !sink.absorbFactors(id, dy: dy, x: x, rows: n) else { return }
        multiply(
            m: out, n: inp, k: n, dyOperand, lda: out, transA: true, bits.map { .bf16($0) } ?? .f32(x), ldb: inp,
            sink.accumulator(for: id), ldc: inp, beta: 1)
    }
}
