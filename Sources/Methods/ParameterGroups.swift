import Llama

/// Parameters treated alike by an optimizer, chosen by role.
public enum ParameterGroup: String, Sendable, Codable, CaseIterable, Comparable {
    /// The token embedding (also the LM head when tied).
    case embedding
    /// An untied LM head.
    case head
    /// RMSNorm scales (Qwen3's per-head query and key norms among them).
    case norms
    /// q, k, v and o projections (and the biases of q, k and v).
    case attention
    /// gate, up and down projections.
    case mlp

    public init(_ role: ParameterRole) {
        self =
            switch role {
            case .embedding: .embedding
            case .head: .head
            case .attentionNorm, .ffnNorm, .finalNorm, .queryNorm, .keyNorm, .attentionOutputNorm, .ffnOutputNorm:
                .norms
            case .query, .key, .value, .output, .queryBias, .keyBias, .valueBias: .attention
            case .gate, .up, .down: .mlp
            }
    }

    public static func < (a: Self, b: Self) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// Optimizer settings per parameter group, as PyTorch recipes' param groups: decoupled weight decay
/// (norms exempt by default), a learning-rate multiplier, and frozen groups that are never updated.
public struct ParameterGroups: Sendable, Equatable, Codable {
    public var weightDecay: Float
    public var noDecay: Set<ParameterGroup>
    public var frozen: Set<ParameterGroup>
    public var learningRateScale: [ParameterGroup: Float]

    public init(
        weightDecay: Float, noDecay: Set<ParameterGroup> = [.norms], frozen: Set<ParameterGroup> = [],
        learningRateScale: [ParameterGroup: Float] = [:]
    ) {
        self.weightDecay = weightDecay
        self.noDecay = noDecay
        self.frozen = frozen
        self.learningRateScale = learningRateScale
    }

    public func weightDecay(for role: ParameterRole) -> Float {
        noDecay.contains(ParameterGroup(role)) ? 0 : weightDecay
    }
    public func isFrozen(_ role: ParameterRole) -> Bool { frozen.contains(ParameterGroup(role)) }
    public func learningRate(_ lr: Float, for role: ParameterRole) -> Float {
        lr * (learningRateScale[ParameterGroup(role)] ?? 1)
    }
}

/// Where each trainable tensor's per-element optimizer state sits in one compact slab: frozen tensors have
/// none (an embedding frozen at 7B would otherwise carry gigabytes of moments). Offsets are 16-float aligned.
public struct TrainableLayout: Sendable, Equatable {
    /// Each parameter's offset in the slab, nil when its group is frozen.
    public let offsets: [Int?]
    /// Floats in the slab.
    public let totalCount: Int

    public init(_ layout: ParameterLayout, groups: ParameterGroups) {
        var offset = 0
        offsets = layout.parameters.map { info in
            guard !groups.isFrozen(info.role) else { return nil }
            defer { offset += (info.count + 15) / 16 * 16 }
            return offset
        }
        totalCount = offset
    }
}
