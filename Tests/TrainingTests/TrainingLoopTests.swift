import Foundation
import Testing
import Datasets
import Formats
import Methods
@testable import Training

/// The training loop end to end: cadence, events, checkpoints and their retention, metrics files, and a stop
/// followed by a resume that ends where an uninterrupted run ends.
@Suite("Training loop")
struct TrainingLoopTests {
    /// Letters a… as ids 0…23; BOS 0, no stop token, so a sample is always `sampleTokens` long.
    struct Letters: Tokenizer {
        var vocabularySize: Int { 24 }
        var bos: Int32? { 0 }
        var stopTokens: Set<Int32> { [] }
        func encode(_ text: String) -> [Int32] { text.unicodeScalars.map { Int32(($0.value - 97) % 24) } }
        func encodeContinuation(_ text: String) -> [Int32] { encode(text) }
        func decode(_ id: Int32, after previous: Int32?) -> [UInt8] { [UInt8(97 + id)] }
    }

    static let heldOut = HeldOut(
        examples: (0..<3).map { i in
            TokenizedExample(ids: (0..<10).map { Int32(($0 * 5 + i) % 24) }, trained: (0..<10).map { $0 > 0 })
        }, classification: ClassificationTests.examples(4), tokenizer: Letters())

    /// Every 4 steps an evaluation and a sample, every 5 a checkpoint, the newest 2 kept; 30 steps.
    static var loop: LoopSettings {
        var l = LoopSettings()
        (l.evalEvery, l.evalBatch, l.sampleEvery, l.sampleTokens, l.samplePrompts) = (4, 4, 4, 3, ["ab"])
        (l.checkpointEvery, l.keepCheckpoints) = (5, 2)
        return l
    }

    /// A run folder's metrics and samples lines, with each step's wall time left out.
    static func records(_ folder: String) throws -> [String] {
        func lines(_ name: String) throws -> [Substring] {
            try String(contentsOfFile: folder + "/" + name, encoding: .utf8).split(separator: "\n")
        }
        let seconds = try #require(MetricsLog.columns.firstIndex(of: "seconds"))
        let json = try (lines("metrics.jsonl") + lines("samples.jsonl")).map { line in
            var object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            object["seconds"] = nil
            return String(
                decoding: try JSONSerialization.data(withJSONObject: object, options: .sortedKeys), as: UTF8.self)
        }
        let csv = try lines("metrics.csv").map { row in
            var cells = row.split(separator: ",", omittingEmptySubsequences: false)
            cells.remove(at: seconds)
            return cells.joined(separator: ",")
        }
        return json + csv
    }

    /// OUTPUT/run.json.
    static func record(_ folder: String) throws -> RunRecord {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(RunRecord.self, from: Data(contentsOf: URL(fileURLWithPath: folder + "/run.json")))
    }

    /// Runs `trainer` to its end or its stop, recording into `folder`.
    static func run(
        _ trainer: Trainer, in folder: String, answer: @escaping (TrainingEvent) -> TrainingAnswer = { _ in .continue }
    ) throws -> (TrainingOutcome, [TrainingEvent]) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let metrics = try MetricsLog(output: folder, resumedAt: trainer.step)
        var events: [TrainingEvent] = []
        let outcome = try trainer.run(Self.loop, heldOut: Self.heldOut, checkpoints: folder + "/checkpoints") {
            events.append($0)
            try metrics.record($0)
            return answer($0)
        }
        try metrics.finish(trainer, outcome: outcome)
        return (outcome, events)
    }

    @Test("events come in order at their cadence, and the newest checkpoints are kept")
    func cadence() throws {
        let folder = CheckpointTests.directory("loop-cadence")
        let (outcome, events) = try Self.run(try TrainerTests.setUp(.adamw), in: folder)
        #expect(outcome == .finished)
        let names = events.map { e -> String in
            switch e {
            case .step(let r): "s\(r.step)"
            case .memory: "m"
            case .evaluation(let e): "e\(e.step)"
            case .sample(let step, _, let completion): "x\(step):\(completion.count)"
            case .checkpoint(let step, _): "c\(step)"
            }
        }
        #expect(Array(names.prefix(12)) == ["e0", "x0:3", "s1", "m", "s2", "s3", "s4", "e4", "x4:3", "s5", "c5", "s6"])
        #expect(Array(names.suffix(4)) == ["s30", "e30", "x30:3", "c30"])
        #expect(names.filter { $0.hasPrefix("c") }.count == 6 && names.filter { $0 == "m" }.count == 1)
        for case .evaluation(let e) in events {
            #expect(e.loss.map(\.isFinite) == true && e.classification?.count == 4)
        }
        #expect(Checkpoint.complete(in: folder + "/checkpoints") == ["step-000025", "step-000030"])
    }

    @Test(
        """
        a run stopped at a step, resumed from the latest or an earlier checkpoint, ends with the weights, state, \
        metrics and samples of an uninterrupted one
        """,
        arguments: [
            (TrainingOptions.Method.adamw, 7, false), (.adamw, 10, false), (.adamw, 7, true), (.dizo, 13, false),
            (.qft, 7, true),
        ])
    func stopAndResume(method: TrainingOptions.Method, stopAt: Int, fromEarlier: Bool) throws {
        let clip = TrainerTests.clip(method)
        let straightFolder = CheckpointTests.directory("loop-straight-\(method.rawValue)-\(stopAt)-\(fromEarlier)")
        let straight = try TrainerTests.setUp(method, clip: clip)
        _ = try Self.run(straight, in: straightFolder)

        let folder = CheckpointTests.directory("loop-\(method.rawValue)-\(stopAt)-\(fromEarlier)")
        let (outcome, _) = try Self.run(try TrainerTests.setUp(method, clip: clip), in: folder) { event in
            if case .step(let r) = event, r.step == stopAt { return .stop }
            return .continue
        }
        let saved = folder + String(format: "/checkpoints/step-%06d", stopAt)
        #expect(outcome == .stopped(step: stopAt, checkpoint: saved))
        let stopped = try Self.record(folder)
        #expect(stopped.outcome == "stopped" && stopped.checkpoint == saved && stopped.step == stopAt)
        #expect(try Checkpoint.latest(in: folder + "/checkpoints") == saved)

        let resumed = try TrainerTests.setUp(method, clip: clip)
        let from = fromEarlier ? folder + "/checkpoints/step-000005" : saved
        try Checkpoint.restore(resumed, from: from)
        let (end, events) = try Self.run(resumed, in: folder)
        #expect(end == .finished)
        let record = try Self.record(folder)
        #expect(
            record.outcome == "finished" && record.checkpoint == nil && record.step == 30 && record.totalSteps == 30)
        #expect(record.method == method.rawValue && record.memory.map { $0.ledgerPeakBytes > 0 } == true)
        guard case .step(let first) = events.first else { throw TrainingError(message: "no step after the resume") }
        #expect(first.step == (fromEarlier ? 6 : stopAt + 1))
        let (a, b) = (TrainerTests.weights(straight), TrainerTests.weights(resumed))
        #expect(a.floats == b.floats && a.native == b.native)
        for (a, b) in zip(straight.method.state, resumed.method.state) { #expect(a.bytes == b.bytes) }
        #expect(try Self.records(folder) == Self.records(straightFolder))
        #expect(Checkpoint.complete(in: folder + "/checkpoints") == ["step-000025", "step-000030"])
    }

    @Test("a stop answered at a checkpoint keeps that checkpoint and saves no other")
    func stopAtCheckpoint() throws {
        let folder = CheckpointTests.directory("loop-stop-at-checkpoint")
        let (outcome, events) = try Self.run(try TrainerTests.setUp(.adamw), in: folder) { event in
            if case .checkpoint = event { return .stop }
            return .continue
        }
        #expect(outcome == .stopped(step: 5, checkpoint: folder + "/checkpoints/step-000005"))
        #expect(events.filter { if case .checkpoint = $0 { true } else { false } }.count == 1)
        #expect(Checkpoint.complete(in: folder + "/checkpoints") == ["step-000005"])
    }

    @Test("--resume auto without a checkpoint names the folder")
    func noCheckpoint() throws {
        let folder = CheckpointTests.directory("loop-none")
        #expect(throws: TrainingError.self) { try Checkpoint.latest(in: folder) }
    }
}
