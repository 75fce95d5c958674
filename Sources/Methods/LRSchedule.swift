import RealModule

/// Learning rate against the step, as transformers' `get_scheduler` ("constant_with_warmup", "linear",
/// "cosine"): linear warmup from 0 over `warmup` steps, then constant, linear to 0, or half a cosine to 0
/// at `total` steps. `step` counts optimizer steps from 0 (the rate used for the first update).
public struct LRSchedule: Sendable, Codable, Equatable {
    public enum Shape: String, Sendable, Codable, CaseIterable { case constant, linear, cosine }

    public var shape: Shape
    public var peak: Double
    public var warmup: Int
    public var total: Int

    public init(_ shape: Shape, peak: Double, warmup: Int = 0, total: Int) {
        self.shape = shape
        self.peak = peak
        self.warmup = warmup
        self.total = total
    }

    public func rate(at step: Int) -> Double {
        if step < warmup { return peak * Double(step) / Double(max(1, warmup)) }
        let progress = Double(step - warmup) / Double(max(1, total - warmup))
        switch shape {
        case .constant: return peak
        case .linear: return peak * max(0, Double(total - step) / Double(max(1, total - warmup)))
        case .cosine: return peak * max(0, 0.5 * (1 + Double.cos(Double.pi * progress)))
        }
    }
}
