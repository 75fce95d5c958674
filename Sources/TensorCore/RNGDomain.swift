/// Every random stream a run draws, each a Philox key: the run's seed plus its domain's offset, listed here once so
/// that no two uses of one seed share a key. Data streams take the keys seed + k·``dataStreamSpacing`` (k = 0, 1, …),
/// which no offset below meets for any k < 2³² (a test checks the first 2¹⁶).
public enum RNGDomain: UInt64, CaseIterable, Sendable {
    /// The order of the training examples (data stream 0; stream k adds k·``dataStreamSpacing``).
    case dataOrder = 0
    /// Random initial weights (pre-training from a built-in shape, benchmarks).
    case initialization = 0x1417_0000
    /// Stochastic rounding of bf16 weights.
    case bf16Rounding = 0xBF16_0000
    /// GaLore's and AdaRankGrad's randomized SVD.
    case lowRankSketch = 0x6A_10_0000
    /// MeZO's perturbations.
    case mezo = 0x3E20_0000
    /// DiZO's perturbations.
    case dizo = 0xD1_20_0000
    /// QFT's stochastic rounding of INT8 weights.
    case qftWeights = 0x0F7_0000
    /// QFT's stochastic rounding of INT8 Lion momenta.
    case quantizedLion = 0x11_0000
    /// LSP-Offload's sparse projectors.
    case lspProjectors = 0x15_0000

    /// The distance between the keys of consecutive data streams (2⁶⁴/φ).
    public static let dataStreamSpacing: UInt64 = 0x9E37_79B9_7F4A_7C15
}

extension Philox {
    /// The generator of `domain` for a run seeded `seed`.
    public init(seed: UInt64, domain: RNGDomain) { self.init(seed: seed &+ domain.rawValue) }

    /// The generator of data stream `stream` for a run seeded `seed`.
    public init(seed: UInt64, dataStream stream: Int) {
        self.init(seed: seed &+ UInt64(stream) &* RNGDomain.dataStreamSpacing)
    }
}
