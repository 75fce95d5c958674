/// The methods `leantune bench methods` puts side by side and `leantune estimate --budget` plans with: each one
/// a label and the configuration overrides (`section.key=value`) that make a training run use it, on top of
/// the defaults. Fused variants drop clipping because they never hold the global gradient norm.
public enum MethodCatalog {
    public struct Entry: Sendable, Codable, Equatable {
        public var label: String
        public var settings: [String]
        public init(label: String, settings: [String]) { (self.label, self.settings) = (label, settings) }

        /// Of `overrides` meant for every method, those this entry's method reads: a method's own key
        /// (`method.rank`) is left out of the methods without it.
        public func applicable(_ overrides: [String]) -> [String] {
            let name = settings.last { $0.hasPrefix("method.name=") }?.dropFirst("method.name=".count)
            let own = name.flatMap { MethodRegistry.definition(named: String($0)) }.map { Set($0.settingKeys) } ?? []
            return overrides.filter { o in
                let key = o.prefix { $0 != "=" }
                guard key.hasPrefix("method."), RunConfig.methodKeys.contains(String(key.dropFirst(7))) else {
                    return true
                }
                return own.contains(String(key.dropFirst(7)))
            }
        }
    }

    /// Every registered method with the settings its definition runs it with.
    public static let entries: [Entry] = MethodRegistry.all.map { d in
        Entry(label: d.name, settings: ["method.name=\(d.name)"] + d.catalogSettings)
    }

    /// The entries named in `labels` (all when empty), in catalog order; an unknown label is an error.
    public static func select(_ labels: [String]) throws -> [Entry] {
        if let unknown = labels.first(where: { l in !entries.contains { $0.label == l } }) {
            throw TrainingError(
                message: "unknown method '\(unknown)'; choose from \(entries.map(\.label).joined(separator: ", "))")
        }
        return labels.isEmpty ? entries : entries.filter { labels.contains($0.label) }
    }
}
