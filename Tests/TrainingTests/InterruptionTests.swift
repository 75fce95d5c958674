import Foundation
import TestSupport
import Testing
import Training

/// `leantune train` run as a user runs it, as a child process at stories260K scale, and interrupted: SIGTERM and
/// SIGKILL at random moments (during steps and checkpoint writes), a second training into the same folder, and
/// writes that fail (a file-size limit stands in for a full disk). Each interrupted run is resumed with
/// `--resume auto`; its exported weights must equal an uninterrupted run's byte for byte.
@Suite("Interruptions and faults of leantune train", .serialized, .enabled(if: SharedReal.available))
struct InterruptionTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// The leantune executable built beside the test bundle.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("leantune").path
    static let steps = 12

    static func folder(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-faults-\(getpid())-\(name)")
            .path
        try? FileManager.default.removeItem(atPath: dir)
        return dir
    }

    /// Arguments of a stories260K run of `method` into `output`, with a checkpoint after every step.
    static func arguments(_ method: String, output: String, steps: Int = steps) -> [String] {
        var settings = [
            "method.name=\(method)", "schedule.steps=\(steps)", "schedule.warmup=0", "checkpoint.every=1",
            "checkpoint.keep=3",
            "logging.output=\(output)", "model.path=\(SharedReal.model)", "model.tokenizer=\(SharedReal.tokenizer)",
            "data.train=\(root)/examples/data/leo-stories.jsonl", "train.batch=2", "train.seq=128", "optimizer.clip=0",
        ]
        switch method {
        case "galore", "adarankgrad": settings.append("method.rank=8")
        case "lsp-offload": settings += ["method.size=32", "method.check_frequency=4"]
        case "mezo", "dizo": settings.append("optimizer.lr=1e-4")
        default: break
        }
        return ["train", "--config", root + "/examples/leo.yaml"] + settings.flatMap { ["--set", $0] }
    }

    /// A started child; `fileBlocks` limits the size of any file it writes (ulimit -f, in KiB).
    static func start(_ arguments: [String], fileBlocks: Int? = nil) throws -> (Process, Pipe) {
        let process = Process(), pipe = Pipe()
        if let fileBlocks {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -f \(fileBlocks) && exec \"$0\" \"$@\"", binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return (process, pipe)
    }

    /// Waits for the child and returns its exit status and everything it printed.
    static func finish(_ child: (Process, Pipe)) -> (status: Int32, output: String) {
        let data = child.1.fileHandleForReading.readDataToEndOfFile()
        child.0.waitUntilExit()
        return (child.0.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func run(_ arguments: [String], fileBlocks: Int? = nil) throws -> (status: Int32, output: String) {
        finish(try start(arguments, fileBlocks: fileBlocks))
    }

    static func newestStep(_ output: String) -> Int {
        Checkpoint.complete(in: output + "/checkpoints").last.flatMap { Int($0.dropFirst(5)) } ?? 0
    }

    static func exported(_ output: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: output + "/model/model.safetensors"))
    }

    /// Starts a run, waits until checkpoint `after` exists, waits a random few milliseconds more (landing in a step
    /// or a checkpoint write) and sends `sig`. Returns the newest checkpoint seen before the signal, and the result.
    static func interrupt(
        _ arguments: [String], output: String, after: Int, signal sig: Int32,
        rng: inout SystemRandomNumberGenerator
    ) throws -> (seen: Int, status: Int32, output: String) {
        let child = try start(arguments)
        while newestStep(output) < after, child.0.isRunning { usleep(500) }
        usleep(UInt32.random(in: 0...15_000, using: &rng))
        let seen = newestStep(output)
        kill(child.0.processIdentifier, sig)
        let (status, text) = finish(child)
        return (seen, status, text)
    }

    static let methods = [
        "adamw", "adamw-fused", "lion", "sgd", "mezo", "dizo", "qft", "galore", "adarankgrad", "lsp-offload",
    ]

    @Test(
        """
        SIGTERM and SIGKILL at random moments: no checkpoint is lost, and --resume auto ends bit for bit where an \
        uninterrupted run does
        """,
        arguments: methods)
    func interruptedRunsResumeExactly(method: String) throws {
        #expect(
            FileManager.default.isExecutableFile(atPath: Self.binary),
            "build the leantune executable (swift build --build-tests)")
        let reference = Self.folder("\(method)-reference")
        let straight = try Self.run(Self.arguments(method, output: reference))
        try #require(straight.status == 0, "\(straight.output)")
        var rng = SystemRandomNumberGenerator(), tried = 0, exact = 0, lost = 0
        for (trial, sig) in [SIGTERM, SIGKILL, SIGTERM, SIGKILL].enumerated() {
            let output = Self.folder("\(method)-\(trial)"), args = Self.arguments(method, output: output)
            let r = try Self.interrupt(
                args, output: output, after: Int.random(in: 1...(Self.steps / 2), using: &rng), signal: sig, rng: &rng)
            guard r.status != 0 else { continue }  // finished before the signal: nothing was interrupted
            tried += 1
            if sig == SIGTERM {
                #expect(r.status == 130, "SIGTERM: \(r.output)")
                #expect(r.output.contains("continue with --resume auto"), "\(r.output)")
            }
            if Self.newestStep(output) < r.seen { lost += 1 }
            let resumed = try Self.run(args + ["--resume", "auto"])
            #expect(resumed.status == 0, "resume after signal \(sig): \(resumed.output)")
            if resumed.status == 0, try Self.exported(output) == Self.exported(reference) { exact += 1 }
        }
        print("interruptions | \(method) | \(tried) tried | \(exact) resumed bit-exactly | \(lost) checkpoints lost")
        #expect(
            tried >= 2 && exact == tried && lost == 0, "\(method): \(tried) interruptions, \(exact) exact, \(lost) lost"
        )
    }

    @Test("a second training into the same folder is refused, naming the first one's PID; the first is not disturbed")
    func secondTrainingIsRefused() throws {
        let output = Self.folder("lock"), args = Self.arguments("adamw", output: output, steps: 100_000)
        let first = try Self.start(args)
        while Self.newestStep(output) < 1, first.0.isRunning { usleep(1000) }
        let second = try Self.run(args + ["--resume", "auto"])
        #expect(second.status != 0)
        #expect(
            second.output.contains("in use by another training (PID \(first.0.processIdentifier))"), "\(second.output)")
        kill(first.0.processIdentifier, SIGTERM)
        let stopped = Self.finish(first)
        #expect(stopped.status == 130, "\(stopped.output)")
        // The lock went with the process.
        #expect(throws: Never.self) { _ = try OutputLock(folder: output) }
    }

    @Test(
        """
        a checkpoint that cannot be written (a full disk) is a clear error; the previous checkpoint stays and resumes \
        exactly
        """
    )
    func failedCheckpointWriteKeepsThePrevious() throws {
        let reference = Self.folder("disk-reference"), output = Self.folder("disk")
        try #require(try Self.run(Self.arguments("adamw", output: reference)).status == 0)
        var rng = SystemRandomNumberGenerator()
        let args = Self.arguments("adamw", output: output)
        let stopped = try Self.interrupt(args, output: output, after: 3, signal: SIGTERM, rng: &rng)
        try #require(stopped.status == 130, "\(stopped.output)")
        let kept = Self.newestStep(output)
        // weights.safetensors of stories260K is about 1 MiB: a 256 KiB limit fails the next checkpoint.
        let full = try Self.run(args + ["--resume", "auto"], fileBlocks: 256)
        #expect(full.status == 1, "\(full.output)")
        #expect(full.output.contains("could not be written, and earlier checkpoints are kept"), "\(full.output)")
        #expect(Self.newestStep(output) == kept)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: output + "/checkpoints").filter {
            $0.contains(".")
        }
        #expect(leftovers.isEmpty, "partial folders left: \(leftovers)")
        let resumed = try Self.run(args + ["--resume", "auto"])
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(try Self.exported(output) == Self.exported(reference))
    }

    @Test("a run that cannot fit in this machine's memory is refused from its plan, before anything is allocated")
    func runTooLargeForTheMachine() throws {
        let output = Self.folder("too-large")
        let r = try Self.run(
            Self.arguments("adamw", output: output) + [
                "--set", "model.shape=llama-3.1-8b", "--set", "train.batch=1024",
                "--set", "train.seq=8192",
            ])
        #expect(r.status != 0 && r.output.contains("but this machine has"), "\(r.output)")
        #expect(!FileManager.default.fileExists(atPath: output), "nothing is written")
    }

    @Test(
        "an export that cannot be written is a clear error and leaves no partial file",
        .enabled(if: SharedReal.available))
    func failedExport() throws {
        let output = Self.folder("export")
        let r = try Self.run(
            ["export", "--model", SharedReal.model, "--tokenizer", SharedReal.tokenizer, "--output", output],
            fileBlocks: 256)
        #expect(r.status == 1, "\(r.output)")
        #expect(r.output.contains("cannot write the file"), "\(r.output)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        #expect(!files.contains { $0.hasSuffix(".partial") } && !files.contains("model.safetensors"), "\(files)")
    }
}
