import Llama
import Methods
import TensorCore

/// AdamW over every trainable weight (PyTorch's semantics), from a full gradient or fused into backward.
public enum AdamWDefinition: OptimizerDefinition {
    public typealias Settings = NoSettings
    public static let name = "adamw"
    public static let summary = "AdamW, a full gradient slab (method.fused: true updates inside backward)"
    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) -> any Optimizer {
        AdamW(layout: model.layout, groups: o.groups, ledger: model.ledger)
    }
    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c)
        return [.optimizerState: 8 * TrainableLayout(layout, groups: o.groups).totalCount]
    }
}

/// AdamW with every tensor updated inside backward: no full gradient, so no global clipping or accumulation.
public enum AdamWFusedDefinition: OptimizerDefinition {
    public typealias Settings = NoSettings
    public static let name = "adamw-fused"
    public static let summary = "AdamW updating each tensor inside backward (no full gradient; needs clip 0)"
    public static let fusion = Fusion.always
    public static let catalogSettings = ["optimizer.clip=0"]
    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) -> any Optimizer {
        AdamWDefinition.optimizer(o, model: model)
    }
    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        AdamWDefinition.stateBytes(c, options: o)
    }
}

/// Lion: the sign of an interpolated momentum, one state tensor.
public enum LionDefinition: OptimizerDefinition {
    public typealias Settings = NoSettings
    public static let name = "lion"
    public static let summary = "Lion, one momentum per weight"
    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) -> any Optimizer {
        Lion(layout: model.layout, groups: o.groups, ledger: model.ledger)
    }
    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c)
        return [.optimizerState: 4 * TrainableLayout(layout, groups: o.groups).totalCount]
    }
}

/// SGD with momentum 0.9.
public enum SGDDefinition: OptimizerDefinition {
    public typealias Settings = NoSettings
    public static let name = "sgd"
    public static let summary = "SGD with momentum 0.9"
    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) -> any Optimizer {
        SGD(layout: model.layout, momentum: 0.9, groups: o.groups, ledger: model.ledger)
    }
    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        LionDefinition.stateBytes(c, options: o)
    }
}

extension TrainingOptions.Method {
    public static let adamw = Self(AdamWDefinition.self)
    public static let adamwFused = Self(AdamWFusedDefinition.self)
    public static let lion = Self(LionDefinition.self)
    public static let sgd = Self(SGDDefinition.self)
}
