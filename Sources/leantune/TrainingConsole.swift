import Foundation
import TensorCore
import Training
#if canImport(Glibc)
import Glibc
#endif

/// How `train` shows a run's events on the console: a progress line with loss, learning rate, tokens/s, ETA
/// and peak memory (rewritten in place on a terminal, every tenth of the run otherwise), and a line of its own
/// for each evaluation, sample and the memory report.
final class TrainingConsole {
    let totalSteps: Int
    private let interactive = isatty(STDOUT_FILENO) != 0
    private var seconds: [Double] = []

    init(totalSteps: Int) { self.totalSteps = totalSteps }

    func show(_ event: TrainingEvent) {
        switch event {
        case .step(let r): progress(r)
        case .memory(let m):
            note(
                String(
                    format:
                        "after the first step (%d positions): plan %@, ledger peak %@ (%+.1f%%), process peak RSS %@",
                    m.length, PassBenchmark.format(bytes: m.plannedBytes),
                    PassBenchmark.format(bytes: m.ledgerPeakBytes), 100 * m.gap,
                    PassBenchmark.format(bytes: m.residentPeakBytes))
                    + (m.planIsOff ? "\nwarning: the memory plan and the measurement differ by more than 15%" : ""))
        case .evaluation(let e):
            var text = String(format: "step %4d  eval", e.step)
            if let c = e.classification {
                text += String(
                    format: "  accuracy %.4f (%d/%d)  label-word loss %.4f", c.accuracy, c.correct, c.count,
                    c.loss.mean)
            }
            if let l = e.loss { text += String(format: "  loss %.4f  perplexity %.3f", l, Foundation.exp(l)) }
            note(text)
        case .sample(let step, let prompt, let completion): note("step \(step) sample: \(prompt)\(completion)")
        case .checkpoint: break
        }
    }

    /// The progress line of a finished step.
    func progress(_ r: StepReport) {
        seconds.append(r.seconds)
        let recent = seconds.suffix(20), perStep = recent.reduce(0, +) / Double(recent.count)
        let eta = Int((Double(totalSteps - r.step) * perStep).rounded())
        let width = 20, done = width * r.step / max(1, totalSteps)
        let bar = String(repeating: "#", count: done) + String(repeating: ".", count: width - done)
        let line = String(
            format: "step %4d/%d [%@] loss %.4f  lr %.2e  %.0f tok/s  ETA %d:%02d  peak RSS %@%@",
            r.step, totalSteps, bar, r.loss, r.learningRate, Double(r.tokens) / r.seconds, eta / 60, eta % 60,
            PassBenchmark.format(bytes: ProcessMemory.peakResidentBytes), r.skipped ? "  (skipped: non-finite)" : "")
        if interactive {
            print("\r" + line, terminator: r.step == totalSteps ? "\n" : "")
        } else if r.step == 1 || r.step % max(1, totalSteps / 10) == 0 || r.step == totalSteps {
            print(line)
        }
        fflush(nil)  // a log file sees each line as it happens
    }

    /// A line of its own that does not overwrite the progress line.
    func note(_ text: String) {
        print((interactive ? "\r\u{1B}[K" : "") + text)
        fflush(nil)
    }
}
