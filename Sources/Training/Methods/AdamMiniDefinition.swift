import Llama
import Methods
import TensorCore

/// Adam-mini: AdamW's first moment, one second moment per Hessian block (half of AdamW's state).
public enum AdamMiniDefinition: OptimizerDefinition {
    public typealias Settings = NoSettings
    public static let name = "adam-mini"
    public static let summary = "Adam-mini, Adam with one second moment per block (4 bytes of state per weight)"

    public static func optimizer(_ o: TrainingOptions, model: LlamaModel) -> any Optimizer {
        AdamMini(layout: model.layout, headDimension: model.config.headDim, groups: o.groups, ledger: model.ledger)
    }

    public static func stateBytes(_ c: LlamaConfig, options o: TrainingOptions) -> [MemoryCategory: Int] {
        let layout = ParameterLayout(c)
        let blocks = AdamMini.blockCount(layout, headDimension: c.headDim, groups: o.groups)
        return [.optimizerState: 4 * (TrainableLayout(layout, groups: o.groups).totalCount + max(1, blocks))]
    }
}

extension TrainingOptions.Method {
    public static let adamMini = Self(AdamMiniDefinition.self)
}
