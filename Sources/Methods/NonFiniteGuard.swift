/// Skips steps whose loss or gradient norm is not finite, counts them, and stops a run after
/// `limit` in a row.
public struct NonFiniteGuard: Sendable, Codable, Equatable {
    public let limit: Int
    public private(set) var skipped = 0
    public private(set) var consecutive = 0

    public init(limit: Int = 5, skipped: Int = 0) {
        self.limit = limit
        self.skipped = skipped
    }

    /// Whether the step may be applied; throws after `limit` consecutive non-finite steps.
    public mutating func admit(loss: Double, gradientNorm: Double, step: Int) throws -> Bool {
        guard loss.isFinite && gradientNorm.isFinite else {
            skipped += 1
            consecutive += 1
            if consecutive >= limit {
                throw MethodError(
                    message:
                        """
                        step \(step): loss \(loss), gradient norm \(gradientNorm) — \(consecutive) non-finite steps in \
                        a row (\(skipped) in all). Lower the learning rate, enable gradient clipping, or check the \
                        data for empty or corrupt samples.
                        """
                )
            }
            return false
        }
        consecutive = 0
        return true
    }
}
