/// The methods `leantune bench methods` puts side by side and `leantune estimate --budget` plans with: each one
/// a label and the configuration overrides (`section.key=value`) that make a training run use it, on top of
/// the defaults. Fused variants drop clipping because they never hold the global gradient norm.
public enum MethodCatalog {
    public struct Entry: Sendable, Codable, Equatable {
        public var label: String
        public var settings: [String]
        public init(label: String, settings: [String]) { (self.label, self.settings) = (label, settings) }
    }

    public static let entries: [Entry] = [
        Entry(label: "adamw", settings: ["method.name=adamw"]),
        Entry(label: "adamw-fused", settings: ["method.name=adamw-fused", "optimizer.clip=0"]),
        Entry(label: "lion", settings: ["method.name=lion"]),
        Entry(label: "sgd", settings: ["method.name=sgd"]),
        Entry(label: "mezo", settings: ["method.name=mezo"]),
        Entry(label: "dizo", settings: ["method.name=dizo"]),
        Entry(label: "qft", settings: ["method.name=qft", "optimizer.clip=0"]),
        Entry(label: "galore", settings: ["method.name=galore", "method.fused=true", "optimizer.clip=0"]),
        Entry(label: "adarankgrad", settings: ["method.name=adarankgrad", "method.fused=true", "optimizer.clip=0"]),
        Entry(label: "lsp-offload", settings: ["method.name=lsp-offload", "optimizer.clip=0"]),
    ]

    /// The entries named in `labels` (all when empty), in catalog order; an unknown label is an error.
    public static func select(_ labels: [String]) throws -> [Entry] {
        if let unknown = labels.first(where: { l in !entries.contains { $0.label == l } }) {
            throw TrainingError(
                message: "unknown method '\(unknown)'; choose from \(entries.map(\.label).joined(separator: ", "))")
        }
        return labels.isEmpty ? entries : entries.filter { labels.contains($0.label) }
    }
}
