/// Every method LeanTune trains with, in the order help text and the catalog list them.
public enum MethodRegistry {
    public static let all: [any MethodDefinition.Type] = [
        AdamWDefinition.self, AdamWFusedDefinition.self, LionDefinition.self, SGDDefinition.self,
        MeZODefinition.self, DiZODefinition.self, QFTDefinition.self, GaLoreDefinition.self,
        AdaRankGradDefinition.self, LSPOffloadDefinition.self, AdamMiniDefinition.self,
    ]

    /// The definition named `name`, if there is one.
    public static func definition(named name: String) -> (any MethodDefinition.Type)? {
        all.first { $0.name == name }
    }

    /// Every name, comma-separated, for messages and help.
    public static var names: String { all.map { $0.name }.joined(separator: ", ") }
}
