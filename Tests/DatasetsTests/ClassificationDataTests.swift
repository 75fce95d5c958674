import Foundation
import Testing
@testable import Datasets
import Formats
import TestSupport

@Suite("Classification data")
struct ClassificationDataTests {
    let task = try! ClassificationTask(template: "{text} It was", labelWords: [" terrible", " great"])

    func file(_ name: String, _ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-cls-\(getpid())-\(name)")
            .path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(
        "SST-2 TSV and JSONL records read as labelled texts; labels by index or by label word",
        .enabled(if: SharedReal.available))
    func reads() throws {
        let tsv = try file("a.tsv", "sentence\tlabel\na charming journey \t1\nbleak and desperate \t0\n")
        #expect(
            try DataReader.read(tsv, task: task) == [
                .classified(text: "a charming journey", label: 1), .classified(text: "bleak and desperate", label: 0),
            ])
        let json = try file("a.jsonl", #"{"text": "fine", "label": "Great"}"# + "\n" + #"{"text": "bad", "label": 0}"#)
        #expect(
            try DataReader.read(json, task: task) == [
                .classified(text: "fine", label: 1), .classified(text: "bad", label: 0),
            ])
        let real = try DataReader.read(fixtureURL("../../../shared/real/data/sst2/test.tsv").path, task: task)
        #expect(real.count == 872)
    }

    @Test(
        """
        a label outside the label set, a missing label, a bad header and a TSV without a task name file, line and \
        field
        """
    )
    func badInput() throws {
        let outside = try #require(throws: DataError.self) {
            try DataReader.read(try file("b.tsv", "sentence\tlabel\nok\t1\nhm\t2\n"), task: task)
        }
        #expect(outside.line == 3 && outside.problem.contains("field \"label\"") && outside.problem.contains("'2'"))
        let missing = try #require(throws: DataError.self) {
            try DataReader.read(try file("b.jsonl", #"{"text": "x"}"#), task: task)
        }
        #expect(missing.line == 1 && missing.problem.contains("\"label\""))
        let header = try #require(throws: DataError.self) {
            try DataReader.read(try file("c.tsv", "review\tstars\nok\t1\n"), task: task)
        }
        #expect(header.line == 1 && header.problem.contains("sentence"))
        #expect(throws: DataError.self) { try DataReader.read(try file("d.tsv", "sentence\tlabel\nok\t1\n")) }
        let fields = try #require(throws: DataError.self) {
            try DataReader.read(try file("e.tsv", "sentence\tlabel\nok\t1\textra\n"), task: task)
        }
        #expect(fields.line == 2 && fields.problem.contains("3 tab-separated fields"), "\(fields)")
        let empty = try #require(throws: DataError.self) {
            try DataReader.read(try file("f.tsv", "sentence\tlabel\n \t1\n"), task: task)
        }
        #expect(empty.line == 2 && empty.problem.contains("empty"), "\(empty)")
        for (n, label) in ["1.5", "true", "false", "[1]"].enumerated() {
            let e = try #require(throws: DataError.self) {
                try DataReader.read(try file("g\(n).jsonl", #"{"text": "x", "label": "# + label + "}"), task: task)
            }
            #expect(e.problem.contains("\"label\""), "label \(label): \(e)")
        }
        #expect(
            try DataReader.read(try file("h.jsonl", #"{"text": "x", "label": 1.0}"#), task: task) == [
                .classified(text: "x", label: 1)
            ])
        #expect(throws: DataError.self) { try ClassificationTask(template: "no placeholder", labelWords: ["a", "b"]) }
        #expect(throws: DataError.self) { try ClassificationTask(template: "{text}", labelWords: ["a", "a"]) }
    }

    @Test(
        "each class is the masked prompt followed by its trained label word, without an end of sequence",
        .enabled(if: SharedReal.available))
    func candidates() throws {
        var encoder = try storiesEncoder()
        encoder.task = task
        let tok = encoder.tokenizer
        let c = try encoder.candidates("the movie")
        #expect(c.count == 2)
        for (word, e) in zip(task.labelWords, c) {
            #expect(tok.decode(zip(e.ids, e.trained).filter(\.1).map(\.0)) == word)
            #expect(
                e.ids.first == tok.bos
                    && tok.decode(
                        zip(e.ids, e.trained).filter { !$0.1 }.map(\.0).dropFirst().map { $0 }, after: tok.bos)
                        == "the movie It was"
            )
            #expect(!tok.stopTokens.contains(e.ids.last!))
        }
        #expect(try encoder.encode(.classified(text: "the movie", label: 1)) == c[1])
        #expect(encoder.stopTokenWarning(c) == nil)
    }

    @Test("subsets with one seed and disjoint ranges share no record; skip beyond the file is refused")
    func subsets() throws {
        let all = Array(0..<100)
        let a = try DataReader.subset(all, skip: 0, limit: 30, seed: 4, file: "f"),
            b = try DataReader.subset(all, skip: 30, limit: 20, seed: 4, file: "f")
        #expect(a.count == 30 && b.count == 20 && Set(a).isDisjoint(with: b) && a != Array(0..<30))
        #expect(try DataReader.subset(all, skip: 0, limit: 0, seed: 4, file: "f") == all)
        #expect(throws: DataError.self) { try DataReader.subset(all, skip: 90, limit: 20, seed: 4, file: "f") }
        // no overflow
        #expect(throws: DataError.self) { try DataReader.subset(all, skip: .max, limit: 0, seed: 4, file: "f") }
        #expect(throws: DataError.self) { try DataReader.subset(all, skip: 1, limit: .max, seed: 4, file: "f") }
    }
}
