import Llama

/// What llama.cpp fixes for its `gemma`, `gemma2` and `gemma3` architectures rather than reading from the file, and
/// how a model maps onto them. Its converter stores every norm weight as 1 + w (llama.cpp's RMSNorm scales by the
/// weight alone); gemma2 slides in every other layer, gemma3 in five layers of six, at RoPE base 10000 unscaled; the
/// attention scale is 1/√E, or 1/√(D/H) for the largest models (by layer count: gemma2 46, gemma3 62).
enum GGUFGemma {
    /// The GGUF architecture of a Gemma configuration, nil for other families.
    static func architecture(_ c: LlamaConfig) -> String? {
        c.gemmaGeneration.map { $0 == 1 ? "gemma" : "gemma\($0)" }
    }

    /// llama.cpp's sliding layers for `arch` (`count` layers): every other for gemma2, five in six for gemma3, none
    /// otherwise.
    static func slidingLayers(_ arch: String, count: Int) -> [Bool] {
        let pattern = arch == "gemma2" ? 2 : arch == "gemma3" ? 6 : 1
        return LlamaConfig.interleavedSlidingLayers(count: count, pattern: pattern)
    }

    /// The RoPE base of the sliding layers of llama.cpp's gemma3.
    static let localRopeTheta: Float = 10000

    /// llama.cpp's attention scale for `arch` at this shape (1/√ of what query_pre_attn_scalar would be).
    static func queryPreAttentionScalar(_ arch: String, dim: Int, heads: Int, headDim: Int, layers: Int) -> Float {
        let largest = (arch == "gemma2" && layers == 46) || (arch == "gemma3" && layers == 62)
        return Float(largest ? dim / max(1, heads) : headDim)
    }

    /// The sliding window to write: the model's, or its context where it has none (a window that never masks, since
    /// llama.cpp's gemma2 and gemma3 always slide).
    static func window(_ c: LlamaConfig) -> Int { c.slidingWindow ?? c.maxSequenceLength }

    /// Why llama.cpp's `arch` would compute something else than the model, nil when it computes the same.
    static func mismatch(_ c: LlamaConfig, arch: String) -> String? {
        guard arch != "gemma" else { return nil }
        let scalar = queryPreAttentionScalar(
            arch, dim: c.dim, heads: c.headCount, headDim: c.headDim, layers: c.layerCount)
        let ours = c.gemma.queryPreAttentionScalar ?? Float(c.headDim)
        if abs(ours - scalar) > 1e-6 * scalar {
            return "query_pre_attn_scalar is \(ours), where llama.cpp's \(arch) scales scores as if it were \(scalar)"
        }
        // a window at least the context long never masks
        func effective(_ w: Int?) -> Int { min(w ?? c.maxSequenceLength, c.maxSequenceLength) }
        for (l, sliding) in slidingLayers(arch, count: c.layerCount).enumerated() {
            if effective(sliding ? window(c) : nil) != effective(c.window(layer: l)) {
                return "layer \(l)'s attention window differs from llama.cpp's \(arch) layer pattern"
            }
            if arch == "gemma3" {
                let local = c.turnsLocally(layer: l)
                let (theta, scaling) =
                    local ? (c.gemma.localRopeTheta ?? c.ropeTheta, nil) : (c.ropeTheta, c.ropeScaling)
                let (theirTheta, theirScaling) = sliding ? (localRopeTheta, nil) : (c.ropeTheta, c.ropeScaling)
                if theta != theirTheta || scaling != theirScaling {
                    return "layer \(l) turns RoPE at base \(theta), where llama.cpp's gemma3 uses \(theirTheta)"
                }
            }
        }
        let capped = c.gemma.attentionSoftcap != nil && c.gemma.logitSoftcap != nil
        let uncapped = c.gemma.attentionSoftcap == nil && c.gemma.logitSoftcap == nil
        if arch == "gemma2" && !capped { return "llama.cpp's gemma2 always soft-caps attention scores and logits" }
        if arch == "gemma3" && !uncapped { return "llama.cpp's gemma3 does not soft-cap" }
        return nil
    }
}
