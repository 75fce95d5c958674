import RealModule

/// How a checkpoint stretches RoPE beyond its original context (Hugging Face `rope_scaling`), as transformers'
/// rope initialisation computes it.
public enum RoPEScaling: Sendable, Codable, Equatable {
    /// Every frequency divided by `factor` (positions interpolated).
    case linear(factor: Double)
    /// Llama 3.1/3.2: long wavelengths divided by `factor`, short ones kept, the band between blended.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContextLength: Int)
    /// Dynamic NTK: the default frequencies up to `contextLength` positions; beyond, the base θ grows with the length.
    case dynamic(factor: Double, contextLength: Int)
    /// YaRN (Qwen2.5's long context): frequencies interpolated by `factor` below the `betaSlow` rotations over the
    /// original context, kept above `betaFast`, ramped between; cos and sin scaled by `attentionFactor`.
    case yarn(
        factor: Double, originalContextLength: Int, betaFast: Double, betaSlow: Double, truncate: Bool,
        attentionFactor: Double)
    /// LongRoPE (Phi-3/3.5's 128k models): frequency i divided by `shortFactors[i]`, or by `longFactors[i]` once the
    /// positions pass the original context; cos and sin scaled by `attentionFactor`.
    case longRoPE(shortFactors: [Double], longFactors: [Double], originalContextLength: Int, attentionFactor: Double)
    /// Frequency i divided by `factors[i]`: GGUF's `rope_freqs` tensor, as llama.cpp's converter writes a scaling
    /// (Llama 3's among them) that no scaling above matches exactly.
    case frequencyFactors([Double])

    /// The inverse frequencies of RoPE's E/2 pairs and the factor on cos and sin, for tables that reach
    /// `positions` positions.
    public func frequencies(theta: Double, headDim e: Int, positions: Int) -> (inverse: [Double], scale: Double) {
        let base = RoPE.frequencies(theta: theta, headDim: e)
        switch self {
        case .linear(let factor):
            return (base.map { $0 / factor }, 1)
        case .llama3(let factor, let low, let high, let original):
            return (
                base.map { frequency in
                    let wavelength = 2 * Double.pi / frequency
                    let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
                    if wavelength < highWavelength { return frequency }
                    if wavelength > lowWavelength { return frequency / factor }
                    let smooth = (Double(original) / wavelength - low) / (high - low)
                    return (1 - smooth) * frequency / factor + smooth * frequency
                }, 1
            )
        case .dynamic(let factor, let length):
            guard positions > length else { return (base, 1) }
            // θ' = θ · (factor·P/L − (factor − 1))^(E/(E−2))
            let grown =
                theta
                * Double.pow(factor * Double(positions) / Double(length) - (factor - 1), Double(e) / Double(e - 2))
            return (RoPE.frequencies(theta: grown, headDim: e), 1)
        case .yarn(let factor, let original, let betaFast, let betaSlow, let truncate, let attentionFactor):
            // the pair index at which a frequency turns `rotations` times over the original context
            func pair(_ rotations: Double) -> Double {
                Double(e) * Double.log(Double(original) / (rotations * 2 * Double.pi)) / (2 * Double.log(theta))
            }
            var (low, high) = (pair(betaFast), pair(betaSlow))
            if truncate { (low, high) = (low.rounded(.down), high.rounded(.up)) }
            (low, high) = (max(low, 0), min(high, Double(e - 1)))
            if low == high { high += 0.001 }
            return (
                base.enumerated().map { i, frequency in
                    // 1 keeps the frequency (extrapolation), 0 divides it by the factor (interpolation)
                    let keep = 1 - min(max((Double(i) - low) / (high - low), 0), 1)
                    return frequency / factor * (1 - keep) + frequency * keep
                }, attentionFactor
            )
        case .longRoPE(let short, let long, let original, let attentionFactor):
            let factors = positions > original ? long : short
            return (zip(base, factors).map { $0 / $1 }, attentionFactor)
        case .frequencyFactors(let factors):
            return (zip(base, factors).map { $0 / $1 }, 1)
        }
    }

    /// YaRN's default cos/sin factor: g(1), or g(mscale) / g(mscale_all_dim) where both are given, with
    /// g(m) = 0.1·m·ln(factor) + 1 (1 when the factor is at most 1).
    public static func yarnAttentionFactor(factor: Double, mscales: (Double, Double)? = nil) -> Double {
        func g(_ m: Double) -> Double { factor <= 1 ? 1 : 0.1 * m * Double.log(factor) + 1 }
        return mscales.map { g($0) / g($1) } ?? g(1)
    }

    /// LongRoPE's default cos/sin factor: √(1 + ln(factor) / ln(original context)), 1 when the factor is at most 1.
    public static func longRoPEAttentionFactor(factor: Double, originalContextLength: Int) -> Double {
        factor <= 1 ? 1 : (1 + Double.log(factor) / Double.log(Double(originalContextLength))).squareRoot()
    }

    /// Pairs of frequency factors the scaling holds, nil where it holds none (checked against E/2).
    public var factorCounts: [Int]? {
        switch self {
        case .longRoPE(let short, let long, _, _): [short.count, long.count]
        case .frequencyFactors(let factors): [factors.count]
        case .linear, .llama3, .dynamic, .yarn: nil
        }
    }
}
