import Llama

/// Phi-3's stacked projections: with ``LlamaConfig/fusedProjections`` a checkpoint holds each layer's q, k and v as
/// the rows of one `self_attn.qkv_proj.weight`, and gate and up as those of one `mlp.gate_up_proj.weight`.
enum FusedProjections {
    /// One stacked checkpoint tensor: its name and the parameters it holds, in row order.
    struct Group {
        let name: String
        let parts: [ParameterID]
    }

    /// The stacked tensors of `layout` (none unless its configuration fuses them).
    static func groups(_ layout: ParameterLayout, _ c: LlamaConfig) -> [Group] {
        guard c.fusedProjections else { return [] }
        return layout.layers.enumerated().flatMap { l, p in
            [
                Group(name: "model.layers.\(l).self_attn.qkv_proj.weight", parts: [p.query, p.key, p.value]),
                Group(name: "model.layers.\(l).mlp.gate_up_proj.weight", parts: [p.gate, p.up]),
            ]
        }
    }

    /// Where each stacked parameter is: its group and its first row there.
    static func places(_ layout: ParameterLayout, _ c: LlamaConfig) -> [ParameterID: (group: Group, row: Int)] {
        var places: [ParameterID: (group: Group, row: Int)] = [:]
        for group in groups(layout, c) {
            var row = 0
            for id in group.parts {
                places[id] = (group, row)
                row += layout.parameters[id].shape[0]
            }
        }
        return places
    }
}
