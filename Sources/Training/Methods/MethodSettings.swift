import Foundation
import Yams

/// How a method's `method:` keys become its typed ``MethodDefinition/Settings`` and back: decoded with Yams over the
/// defaults, so a key left out keeps its default, and a key the method does not read is refused by name.
extension MethodDefinition {
    /// The keys of `Settings` (its coding keys), sorted.
    public static var settingKeys: [String] { ((try? mapping(defaults)) ?? [:]).keys.sorted() }

    /// `entries` (this method's keys of the `method:` section) decoded over the defaults and written into `options`.
    static func configure(_ entries: [String: RunConfig.Value], into options: inout TrainingOptions) throws {
        try apply(settings(entries), to: &options)
    }

    /// The settings `entries` make, every key named.
    static func resolved(_ entries: [String: RunConfig.Value]) throws -> [String: RunConfig.Value] {
        try mapping(settings(entries))
    }

    static func settings(_ entries: [String: RunConfig.Value]) throws -> Settings {
        let known = Set(settingKeys)
        if let foreign = entries.keys.sorted().first(where: { !known.contains($0) }) {
            let owners = MethodRegistry.all.filter { $0.settingKeys.contains(foreign) }.map { $0.name }
            throw TrainingError(
                message: owners.isEmpty
                    ? "unknown key 'method.\(foreign)'"
                        + (RunConfig.closest(to: foreign, among: settingKeys).map { "; did you mean 'method.\($0)'?" }
                            ?? "")
                    : """
                    method.\(foreign) does not apply to \(name); it is a setting of \(owners.joined(separator: ", ")). \
                    Remove it, or choose that method
                    """
            )
        }
        guard case .mapping(var mapping)? = try Yams.compose(yaml: YAMLEncoder().encode(defaults)) else {
            return defaults
        }
        for (key, value) in entries { mapping[key] = value.node }
        do { return try YAMLDecoder().decode(Settings.self, from: .mapping(mapping)) } catch let e as DecodingError {
            throw TrainingError(message: describe(e, entries))
        }
    }

    /// `settings` as keys and values.
    static func mapping(_ settings: Settings) throws -> [String: RunConfig.Value] {
        guard case .mapping(let mapping)? = try Yams.compose(yaml: YAMLEncoder().encode(settings)) else { return [:] }
        var out: [String: RunConfig.Value] = [:]
        for (key, value) in mapping {
            if let k = key.string, let v = ConfigYAML.value(value).flatMap(RunConfig.Value.init(loaded:)) { out[k] = v }
        }
        return out
    }

    /// A decoding failure as the key and the value it could not take.
    static func describe(_ error: DecodingError, _ entries: [String: RunConfig.Value]) -> String {
        let (type, context): (Any.Type?, DecodingError.Context) =
            switch error {
            case .typeMismatch(let t, let c): (t, c)
            case .valueNotFound(let t, let c): (t, c)
            case .keyNotFound(_, let c), .dataCorrupted(let c): (nil, c)
            @unknown default: (nil, DecodingError.Context(codingPath: [], debugDescription: "\(error)"))
            }
        guard let key = context.codingPath.first?.stringValue else {
            return "method (\(name)): \(context.debugDescription)"
        }
        let expected =
            switch type {
            case is Int.Type: "an integer"
            case is Double.Type, is Float.Type: "a number"
            case is Bool.Type: "true or false"
            case is String.Type: "a string"
            default: context.codingPath.count > 1 ? "a list of strings" : "a valid value"
            }
        return "'method.\(key)' must be \(expected), got \(entries[key]?.description ?? "null")"
    }
}
