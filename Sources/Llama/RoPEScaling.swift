import RealModule

/// How a checkpoint stretches RoPE beyond its original context (Hugging Face `rope_scaling`).
public enum RoPEScaling: Sendable, Codable, Equatable {
    /// Every frequency divided by `factor` (positions interpolated).
    case linear(factor: Double)
    /// Llama 3.1/3.2: long wavelengths divided by `factor`, short ones kept, the band between blended.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContextLength: Int)

    /// The scaled inverse frequency.
    public func apply(_ frequency: Double) -> Double {
        switch self {
        case .linear(let factor):
            return frequency / factor
        case .llama3(let factor, let low, let high, let original):
            let wavelength = 2 * Double.pi / frequency
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            if wavelength < highWavelength { return frequency }
            if wavelength > lowWavelength { return frequency / factor }
            let smooth = (Double(original) / wavelength - low) / (high - low)
            return (1 - smooth) * frequency / factor + smooth * frequency
        }
    }
}
