import Foundation
import Datasets
import Llama

/// Accuracy of a model on a classification task, and the LM loss of the gold label words.
public struct ClassificationResult: Sendable {
    public var correct: Int
    public var count: Int
    /// Next-token loss over the gold candidates' label-word tokens.
    public var loss: LossResult
    public var accuracy: Double { count > 0 ? Double(correct) / Double(count) : 0 }
}

/// Scores classification examples as MeZO does: a candidate's score is the mean log-likelihood of its
/// label-word tokens; the prediction is the best-scoring class.
public enum Classification {
    /// [example][class] mean log-likelihood of each candidate, forward only, `batchSize` sequences per pass.
    public static func scores(
        _ model: LlamaModel, _ examples: [ClassificationExample], batchSize: Int, maxLength: Int
    ) throws -> [[Double]] {
        let all = examples.flatMap(\.candidates)
        var losses: [LossResult] = []
        losses.reserveCapacity(all.count)
        var start = 0
        while start < all.count {
            let chunk = Array(all[start..<min(all.count, start + batchSize)])
            losses += try model.sequenceLosses(try Batcher.batch(chunk, maxLength: maxLength))
            start += chunk.count
        }
        var out: [[Double]] = [], next = 0
        for e in examples {
            out.append(losses[next..<next + e.candidates.count].map { -$0.mean })
            next += e.candidates.count
        }
        return out
    }

    /// MeZO's classification-style loss: per example, −log softmax(scores)[gold] over its candidates'
    /// scores; summed over the examples (count: examples). All candidates run in one forward pass.
    public static func loss(
        _ model: LlamaModel, _ examples: [ClassificationExample], maxLength: Int
    ) throws -> LossResult {
        let sequences = examples.reduce(0) { $0 + $1.candidates.count }
        let scores = try scores(model, examples, batchSize: max(1, sequences), maxLength: maxLength)
        var sum = 0.0
        for (e, s) in zip(examples, scores) {
            let m = s.max() ?? 0
            sum += m + Foundation.log(s.reduce(0) { $0 + Foundation.exp($1 - m) }) - s[e.label]
        }
        return LossResult(sum: sum, count: examples.count)
    }

    public static func evaluate(
        _ model: LlamaModel, _ examples: [ClassificationExample], batchSize: Int, maxLength: Int
    ) throws -> ClassificationResult {
        let scores = try scores(model, examples, batchSize: batchSize, maxLength: maxLength)
        var result = ClassificationResult(correct: 0, count: examples.count, loss: LossResult(sum: 0, count: 0))
        for (e, s) in zip(examples, scores) {
            if s.indices.max(by: { s[$0] < s[$1] }) == e.label { result.correct += 1 }
            let tokens = e.candidates[e.label].trained.dropFirst().filter { $0 }.count
            result.loss.sum += -s[e.label] * Double(tokens)
            result.loss.count += tokens
        }
        return result
    }
}
