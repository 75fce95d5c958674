import Llama

/// Phi-3's stacked projections: with ``LlamaConfig/fusedProjections`` a checkpoint holds each layer's q, k and v as
/// the rows of one `self_attn.qkv_proj.weight`, and gate and up as those of one `mlp.gate_up_proj.weight`.
enum FusedProjections {
    /// One stacked checkpoint tensor: its name, the parameters it holds in row order, and its shape.
    struct Group {
        let name: String
        let parts: [ParameterID]
        let shape: [Int]
    }

    /// The stacked tensors of `layout` (none unless its configuration fuses them).
    static func groups(_ layout: ParameterLayout, _ c: LlamaConfig) -> [Group] {
        guard c.fusedProjections else { return [] }
        func group(_ name: String, _ parts: [ParameterID]) -> Group {
            let shapes = parts.map { layout.parameters[$0].shape }
            return Group(name: name, parts: parts, shape: [shapes.reduce(0) { $0 + $1[0] }, shapes[0][1]])
        }
        return layout.layers.enumerated().flatMap { l, p in
            [
                group("model.layers.\(l).self_attn.qkv_proj.weight", [p.query, p.key, p.value]),
                group("model.layers.\(l).mlp.gate_up_proj.weight", [p.gate, p.up]),
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
