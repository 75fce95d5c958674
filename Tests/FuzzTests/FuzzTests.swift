import Foundation
import TestSupport
import Testing

/// Mutation fuzzing of every loader, in process. Bounded by time: FUZZ_SECONDS in all (24 by default, split
/// evenly over the targets); FUZZ_SEED (default 1, or "random"), FUZZ_TARGET (one target's name) and
/// FUZZ_ITERATION (replay one mutant) reproduce a report. A crash or a hang ends the test process with a line
/// naming the target, seed, iteration and the file holding the input; copy that file into
/// Tests/Fixtures/fuzz/TARGET/ under the name of the seed file it replaces plus a suffix (e.g. config.json.7),
/// and ``regressions()`` keeps it fixed.
@Suite("Fuzzing: bad input gives an error, never a crash or a hang", .serialized)
struct FuzzTests {
    static let environment = ProcessInfo.processInfo.environment
    static let hangSeconds = Double(environment["FUZZ_HANG_SECONDS"] ?? "") ?? 10

    static func scratch(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("leantune-fuzz-\(getpid())-\(name)").path
    }

    /// Writes `target`'s seed files into `folder`.
    static func lay(_ target: FuzzTarget, in folder: String) throws {
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, bytes) in target.files { try Data(bytes).write(to: URL(fileURLWithPath: folder + "/" + name)) }
    }

    static func fnv(_ s: String) -> UInt64 {
        s.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    @Test("every target's seed loads cleanly (so mutants reach past the first check)")
    func seedsAreValid() throws {
        for target in try FuzzTarget.all(scratch: Self.scratch("seeds")) {
            let folder = Self.scratch("seed-\(target.name)")
            try Self.lay(target, in: folder)
            #expect(throws: Never.self, "seed of \(target.name)") { try target.run(folder) }
        }
    }

    @Test("mutants of every format: errors only, within the time limit per input")
    func mutants() throws {
        CrashReport.install(hangSeconds: Self.hangSeconds)
        let env = Self.environment
        let seed =
            env["FUZZ_SEED"] == "random" ? UInt64.random(in: 0...UInt64.max) : UInt64(env["FUZZ_SEED"] ?? "") ?? 1
        let only = env["FUZZ_TARGET"], replay = env["FUZZ_ITERATION"].flatMap(Int.init)
        let targets = try FuzzTarget.all(scratch: Self.scratch("mutant-seeds")).filter {
            only == nil || $0.name == only
        }
        let budget = (Double(env["FUZZ_SECONDS"] ?? "") ?? 24) / Double(max(targets.count, 1))
        print("fuzz: seed \(seed), \(String(format: "%.1f", budget)) s per target, hang limit \(Self.hangSeconds) s")
        for target in targets {
            let folder = Self.scratch("mutant-\(target.name)")
            try Self.lay(target, in: folder)
            let deadline = Date().addingTimeInterval(budget)
            var tried = 0, refused = 0, slowest = (seconds: 0.0, iteration: 0)
            var iteration = replay ?? 0
            while replay == nil ? Date() < deadline : iteration == replay {
                let mixed = seed ^ Self.fnv(target.name) &* 31 ^ UInt64(iteration) &* 0x9E37_79B9_7F4A_7C15
                var pick = SplitMix64(seed: mixed)
                let spot = target.mutable.randomElement(using: &pick)!
                var mutator = Mutator(seed: mixed, hot: spot.hot, text: spot.text)
                let path = folder + "/" + spot.file
                try Data(mutator.mutate(target.files[spot.file]!)).write(to: URL(fileURLWithPath: path))
                CrashReport.begin(
                    "target \(target.name), FUZZ_SEED=\(seed) FUZZ_ITERATION=\(iteration): the input is \(path)")
                do { try target.run(folder) } catch { refused += 1 }
                let seconds = CrashReport.end()
                if seconds > slowest.seconds { slowest = (seconds, iteration) }
                try Data(target.files[spot.file]!).write(to: URL(fileURLWithPath: path))
                tried += 1
                iteration += 1
            }
            print(
                """
                fuzz \(target.name): \(tried) inputs, \(refused) refused with an error, \(tried - refused) accepted, \
                slowest \(String(format: "%.2f", slowest.seconds)) s (FUZZ_ITERATION=\(slowest.iteration))
                """
            )
            #expect(
                slowest.seconds < Self.hangSeconds,
                "\(target.name): FUZZ_ITERATION=\(slowest.iteration) took \(slowest.seconds) s")
        }
    }

    /// Every input that once crashed or hung, under Tests/Fixtures/fuzz/TARGET/SEEDFILE.SUFFIX: each ends now, with an
    /// error or (a valid but slow input) a result, well within the hang limit.
    @Test("inputs that once crashed or hung end, quickly")
    func regressions() throws {
        CrashReport.install(hangSeconds: Self.hangSeconds)
        let root = fixtureURL("fuzz").path, fm = FileManager.default
        let targets = try FuzzTarget.all(scratch: Self.scratch("regression-seeds"))
        var checked = 0
        for target in targets {
            let cases = (try? fm.contentsOfDirectory(atPath: root + "/" + target.name))?.sorted() ?? []
            for name in cases {
                guard let replaced = target.files.keys.first(where: { name.hasPrefix($0 + ".") }) else {
                    Issue.record(
                        """
                        fuzz/\(target.name)/\(name) does not name a seed file of the target \
                        (\(target.files.keys.sorted()))
                        """
                    )
                    continue
                }
                let folder = Self.scratch("regression-\(target.name)")
                try Self.lay(target, in: folder)
                try fm.removeItem(atPath: folder + "/" + replaced)
                try fm.copyItem(atPath: root + "/" + target.name + "/" + name, toPath: folder + "/" + replaced)
                CrashReport.begin("regression fuzz/\(target.name)/\(name)")
                _ = try? target.run(folder)  // refused or (a slow input) accepted: it must end, and quickly
                let seconds = CrashReport.end()
                #expect(seconds < 2, "fuzz/\(target.name)/\(name) took \(seconds) s")
                checked += 1
            }
        }
        print("fuzz regressions: \(checked) inputs")
    }
}
