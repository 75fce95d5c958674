import ArgumentParser
import Foundation
import Llama
import Training

/// Runs `scripts/peer_bench.py` (PyTorch) on the same shape, batch and methods, and adds its times to the table.
enum PeerBenchmark {
    struct Output: Decodable {
        var rows: [String: MethodBenchmarkTable.Peer]
    }

    /// What the peer script calls a row: "METHOD PRECISION" (the label already says it when the table has several).
    static func name(_ label: String, _ settings: [String]) -> String {
        if label.contains(" ") { return label }
        let precision =
            settings.last { $0.hasPrefix("train.precision=") }.map { String($0.dropFirst("train.precision=".count)) }
            ?? "fp32"
        return "\(label) \(precision)"
    }

    static func attach(
        to table: inout MethodBenchmarkTable, python: String, script: String, config c: LlamaConfig
    ) throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("leantune-peer-\(getpid()).json")
        defer { try? FileManager.default.removeItem(at: out) }
        let shape = [
            "dim=\(c.dim)", "ffn=\(c.ffnDim)", "layers=\(c.layerCount)", "heads=\(c.headCount)",
            "kv_heads=\(c.kvHeadCount)", "vocab=\(c.vocabSize)", "tied=\(c.tiedEmbeddings ? 1 : 0)",
            "rope_theta=\(c.ropeTheta)",
        ].joined(separator: ",")
        let arguments = [
            script, "--shape", shape, "--batch", "\(table.batch)", "--seq", "\(table.seq)", "--threads",
            "\(table.threads)",
            "--repetitions", "\(table.repetitions)", "--methods",
            (table.rows.map { name($0.label, $0.settings) } + (table.misses ?? []).map { name($0.label, $0.settings) })
                .joined(separator: ","), "--output", out.path,
        ]
        print("== PyTorch: \(python) \(arguments.joined(separator: " "))")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python.contains("/") ? python : "/usr/bin/env")
        process.arguments = python.contains("/") ? arguments : [python] + arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError(
                """
                the PyTorch peer (\(python) \(script)) exited with status \(process.terminationStatus); its output is \
                above. It needs torch, transformers, galore-torch and lion-pytorch (pip install torch transformers \
                galore-torch lion-pytorch)
                """
            )
        }
        let data = try Data(contentsOf: out)
        let peers = try JSONDecoder().decode(Output.self, from: data).rows
        for i in table.rows.indices { table.rows[i].pytorch = peers[name(table.rows[i].label, table.rows[i].settings)] }
        if var misses = table.misses {
            for i in misses.indices { misses[i].pytorch = peers[name(misses[i].label, misses[i].settings)] }
            table.misses = misses
        }
    }
}
