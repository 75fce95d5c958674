import TensorCore

/// Keys and values of every layer for the tokens seen so far (one sequence).
public final class KVCache {
    /// Tokens the cache can hold.
    public let capacity: Int
    /// Tokens held now (the position of the next token).
    public private(set) var length = 0
    let keys: [AlignedBuffer<Float>], values: [AlignedBuffer<Float>]

    /// A cache for `capacity` tokens of `config` (2·L·capacity·K·E floats).
    public init(config: LlamaConfig, capacity: Int, ledger: MemoryLedger = .shared) {
        self.capacity = capacity
        keys = (0..<config.layerCount).map { _ in
            AlignedBuffer(count: capacity * config.kvDim, category: .activations, ledger: ledger)
        }
        values = (0..<config.layerCount).map { _ in
            AlignedBuffer(count: capacity * config.kvDim, category: .activations, ledger: ledger)
        }
    }

    func advance(by n: Int) { length += n }

    /// Forget every token.
    public func reset() { length = 0 }
}

extension LlamaModel {
    /// Runs `tokens` (the next tokens of the cached sequence) and returns the logits [V] of the last.
    public func nextTokenLogits(_ tokens: [Int32], cache: KVCache) throws -> [Float] {
        let n = tokens.count, c = config
        guard n > 0 else { throw LlamaError(.input, "no tokens to run") }
        guard cache.length + n <= cache.capacity else {
            throw LlamaError(
                .input,
                """
                the sequence would reach \(cache.length + n) tokens, beyond the cache's \(cache.capacity); ask for \
                fewer tokens
                """
            )
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw LlamaError(.input, "token id \(bad) is outside the vocabulary [0, \(c.vocabSize))")
        }
        let s = PassShape(batch: 1, length: n)
        let keys = cache.length + n
        let arena = Arena<Float>(
            LayerActivations.counts(c, s, withKV: false) + [n * c.dim], category: .activations, ledger: ledger)
        let a = LayerActivations(c, s, withKV: false, from: arena)
        let x = arena.take(n * c.dim)
        let ws = Workspace(c, s, logitsRows: 1, backward: false, ledger: ledger)
        let rope = LayerRoPE(c) { RoPE(c, start: cache.length, count: n, local: $0) }
        embed(tokens, into: x)
        for l in 0..<c.layerCount {
            let kv = KVTarget(k: cache.keys[l].pointer, v: cache.values[l].pointer, keys: keys, offset: cache.length)
            layerForward(l, x: x, out: x, a, s, kv: kv, rope: rope[layer: l], ws)
        }
        cache.advance(by: n)
        return outputLogits(x + (n - 1) * c.dim, rows: 1, ws)
    }
}

extension LlamaModel {
    /// Continues `prompt` (non-empty, BOS included if wanted) by up to `maxNewTokens` tokens,
    /// calling `emit` with each new token as it is chosen; stops early at a token in `stop`.
    /// Returns the new tokens. The last chosen token is never run, so the cache holds
    /// prompt + new − 1 tokens at most (capped by the model's maximum length).
    @discardableResult
    public func generate(
        prompt: [Int32], maxNewTokens: Int, sampler: inout Sampler, stop: Set<Int32> = [],
        emit: (Int32) -> Void = { _ in }
    ) throws -> [Int32] {
        guard !prompt.isEmpty, maxNewTokens > 0 else { return [] }
        guard prompt.count <= config.maxSequenceLength else {
            throw LlamaError(
                .input, "the prompt has \(prompt.count) tokens; the model allows \(config.maxSequenceLength)")
        }
        let capacity = min(config.maxSequenceLength, prompt.count + min(maxNewTokens, config.maxSequenceLength) - 1)
        let budget = capacity - prompt.count + 1
        let cache = KVCache(config: config, capacity: max(capacity, prompt.count), ledger: ledger)
        var logits = try nextTokenLogits(prompt, cache: cache)
        var produced: [Int32] = []
        for step in 0..<budget {
            let next = sampler.sample(logits)
            if stop.contains(next) { break }
            emit(next)
            produced.append(next)
            if step + 1 < budget { logits = try nextTokenLogits([next], cache: cache) }
        }
        return produced
    }
}
