import Foundation
import Formats
import Llama
import TensorCore

/// A training checkpoint: a folder `step-NNNNNN` holding `weights.safetensors` (every parameter, fp32, or
/// the store's own tensors when it keeps weights in another form, e.g. INT8), `optimizer.safetensors` (the
/// method's state tensors, each in its own type) and `trainer.json` (step, options, guard).
/// It is written under a temporary name and renamed into place, so a folder that exists is complete.
/// The data order and the learning rate are functions of (seed, step), so nothing else is needed to
/// continue bit for bit.
public enum Checkpoint {
    struct TrainerState: Codable {
        var format = 1
        var step: Int
        var options: TrainingOptions
        var nonFiniteSkipped: Int
        var parameterCount: Int
    }

    /// Writes the checkpoint of `trainer` into `directory/step-NNNNNN` (with the run's resolved
    /// configuration as config.yaml when given) and returns its path.
    @discardableResult
    public static func save(_ trainer: Trainer, in directory: String, resolvedConfig: String? = nil) throws -> String {
        let final = directory + String(format: "/step-%06d", trainer.step), partial = final + ".partial"
        let fm = FileManager.default
        try? fm.removeItem(atPath: partial)
        do { try fm.createDirectory(atPath: partial, withIntermediateDirectories: true) } catch {
            throw TrainingError(
                message:
                    """
                    \(partial): cannot create the checkpoint folder (\(error.localizedDescription)); check the output \
                    location
                    """
            )
        }
        let model = trainer.model, layout = model.layout
        do {
            try SafeTensorsWriter.write(
                model.store.nativeState?.map(SafeTensorsWriter.Entry.init)
                    ?? layout.parameters.enumerated().map { id, info in
                        SafeTensorsWriter.Entry(name: info.name, shape: info.shape) {
                            model.store.withFloats(id) { Array($0) }
                        }
                    }, to: partial + "/weights.safetensors", dtype: .f32)
            try SafeTensorsWriter.write(
                trainer.method.state.map(SafeTensorsWriter.Entry.init), to: partial + "/optimizer.safetensors",
                dtype: .f32)
            let state = TrainerState(
                step: trainer.step, options: trainer.options, nonFiniteSkipped: trainer.guardian.skipped,
                parameterCount: layout.parameterCount)
            try JSONEncoder().encode(state).write(to: URL(fileURLWithPath: partial + "/trainer.json"))
            if let resolvedConfig {
                try Data(resolvedConfig.utf8).write(to: URL(fileURLWithPath: partial + "/config.yaml"))
            }
        } catch {
            try? fm.removeItem(atPath: partial)  // the earlier checkpoints are untouched
            throw TrainingError(
                message:
                    """
                    \(final): the checkpoint could not be written, and earlier checkpoints are kept (\(error)); free \
                    disk space and resume with --resume auto
                    """
            )
        }
        // An older folder of this step (a run resumed from an earlier checkpoint) is renamed away before the new one
        // takes its name, so that at every moment each complete folder is whole.
        let replaced = final + ".replaced"
        try? fm.removeItem(atPath: replaced)
        if fm.fileExists(atPath: final) { try fm.moveItem(atPath: final, toPath: replaced) }
        do { try fm.moveItem(atPath: partial, toPath: final) } catch {
            throw TrainingError(
                message: "\(final): cannot rename the finished checkpoint into place (\(error.localizedDescription))")
        }
        try? fm.removeItem(atPath: replaced)
        return final
    }

    /// The names of the complete checkpoint folders in `directory` (`step-NNNNNN`, made only by the final rename of
    /// ``save(_:in:resolvedConfig:)``), oldest first; folders being written or replaced are not among them.
    public static func complete(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter {
                $0.count >= 11 && $0.hasPrefix("step-") && $0.dropFirst(5).allSatisfy { ("0"..."9").contains($0) }
            }.sorted()
    }

    /// The path of the complete checkpoint with the highest step in `directory`.
    public static func latest(in directory: String) throws -> String {
        guard let last = complete(in: directory).last else {
            throw TrainingError(message: "--resume auto: no checkpoint in \(directory)")
        }
        return directory + "/" + last
    }

    /// Deletes all but the newest `keep` complete checkpoints in `directory` (0 keeps all).
    public static func prune(in directory: String, keep: Int) throws {
        guard keep > 0 else { return }
        for name in complete(in: directory).dropLast(keep) {
            try FileManager.default.removeItem(atPath: directory + "/" + name)
        }
    }

    /// Restores weights, optimizer state and the step of `trainer` (built with the same model shape and
    /// examples) from `path`. Nothing is changed unless the whole checkpoint reads and matches.
    public static func restore(_ trainer: Trainer, from path: String) throws {
        guard let data = FileManager.default.contents(atPath: path + "/trainer.json"),
            let state = try? JSONDecoder().decode(TrainerState.self, from: data)
        else {
            throw TrainingError(
                message: "\(path): no readable trainer.json; pass a step-NNNNNN folder written by leantune train")
        }
        guard (0...trainer.options.schedule.total).contains(state.step),
            (0...max(0, state.step)).contains(state.nonFiniteSkipped)
        else {
            throw TrainingError(
                message:
                    """
                    \(path)/trainer.json: step \(state.step) (with \(state.nonFiniteSkipped) skipped) is outside this \
                    run's \(trainer.options.schedule.total) steps; the file is damaged
                    """
            )
        }
        let layout = trainer.model.layout
        guard state.parameterCount == layout.parameterCount, state.options.method == trainer.options.method else {
            throw TrainingError(
                message:
                    """
                    \(path): the checkpoint is for \(state.options.method.rawValue) on \(state.parameterCount) \
                    parameters; this run is \(trainer.options.method.rawValue) on \(layout.parameterCount)
                    """
            )
        }
        if state.options != trainer.options {
            let differing = Mirror(reflecting: state.options).children.compactMap { saved -> String? in
                let now = Mirror(reflecting: trainer.options).children.first { $0.label == saved.label }
                return "\(saved.value)" == "\(now?.value ?? "")"
                    ? nil : "\(saved.label ?? "?"): checkpoint \(saved.value), now \(now?.value ?? "–")"
            }
            throw TrainingError(
                message:
                    """
                    \(path): this run's options differ from the checkpoint's, so it would not continue the same run \
                    (\(differing.joined(separator: "; "))). Pass the original options.
                    """
            )
        }
        let weights = try SafeTensorsFile(path: path + "/weights.safetensors")
        let optimizer = try SafeTensorsFile(path: path + "/optimizer.safetensors")
        let native = trainer.model.store.nativeState
        if native == nil {
            for info in layout.parameters
            where weights.tensors[info.name].map({ $0.shape != info.shape || $0.dtype != .f32 }) ?? true {
                throw TrainingError(
                    message:
                        """
                        \(path)/weights.safetensors: tensor \(info.name) is missing or is not F32 \(info.shape); the \
                        checkpoint is for another model or another weight format
                        """
                )
            }
        }
        do { try trainer.method.prepareRestore(counts: optimizer.tensors.mapValues(\.count)) } catch {
            throw TrainingError(message: "\(path)/optimizer.safetensors: \(error)")
        }
        try check(native ?? [], in: weights, path + "/weights.safetensors")
        try check(trainer.method.state, in: optimizer, path + "/optimizer.safetensors")
        // Everything checked: now overwrite.
        if let native {
            for s in native { weights.readBytes(weights.tensors[s.name]!, into: s.pointer) }
            do { try trainer.model.store.checkNativeState() } catch {
                throw TrainingError(message: "\(path)/weights.safetensors: \(error)")
            }
        } else {
            for (id, info) in layout.parameters.enumerated() {
                trainer.model.store.update(id) { w in weights.read(weights.tensors[info.name]!, into: w.baseAddress!) }
            }
        }
        for s in trainer.method.state { optimizer.readBytes(optimizer.tensors[s.name]!, into: s.pointer) }
        trainer.restore(step: state.step, nonFiniteSkipped: state.nonFiniteSkipped)
    }

    /// Every state tensor is in `file` with its type and size (its layout matches this run's configuration).
    static func check(_ state: [StateTensor], in file: SafeTensorsFile, _ path: String) throws {
        for s in state {
            guard let t = file.tensors[s.name] else {
                throw TrainingError(
                    message:
                        "\(path): state \(s.name) is missing; the checkpoint was written with other method settings")
            }
            guard t.dtype == s.dtype, t.count == s.count else {
                throw TrainingError(
                    message:
                        """
                        \(path): state \(s.name) is \(t.count) × \(t.dtype) but this run's configuration makes \
                        \(s.count) × \(s.dtype); resume with the settings the checkpoint was written with
                        """
                )
            }
        }
    }
}
