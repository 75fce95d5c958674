import Datasets
import Formats
import Llama

/// A run's data: records read and checked (file, line, field) before any weights load, then encoded
/// with the model's tokenizer.
public struct RunData {
    public let task: ClassificationTask?
    public let trainPath: String
    public let evalPath: String?
    /// Records with the line of their file.
    public let train: [(line: Int, record: Record)]
    public let eval: [(line: Int, record: Record)]
    /// With `data.on_error: skip`, the invalid records left out of each file (train, then eval).
    public let skipped: [(file: String, errors: [DataError])]

    /// Reads `data.train` and `data.eval` with their subsets (`data.skip`, `data.limit`, `data.eval_skip`,
    /// `data.eval_limit`, shuffled by `data.sample_seed`).
    public init(_ data: RunSettings.Data) throws {
        task = try RunConfig.classificationTask(data)
        trainPath = try RunSettings.required(data.train, "data.train")
        evalPath = data.eval
        let seed = UInt64(max(0, data.sampleSeed))
        let policy = data.onError
        guard let onError = DataReader.OnError(rawValue: policy) else {
            throw TrainingError(
                message:
                    """
                    data.on_error is '\(policy)'; choose fail (refuse a file with an invalid record) or skip (leave \
                    such records out, counted)
                    """
            )
        }
        let trainFile = try DataReader.readNumbered(trainPath, task: task, onError: onError)
        train = try DataReader.subset(
            trainFile.records, skip: data.skip, limit: data.limit, seed: seed,
            file: trainPath)
        var skipped = [(file: trainPath, errors: trainFile.skipped)]
        if let path = evalPath {
            let evalFile = try DataReader.readNumbered(path, task: task, onError: onError)
            eval = try DataReader.subset(
                evalFile.records, skip: data.evalSkip, limit: data.evalLimit,
                seed: seed, file: path)
            skipped.append((path, evalFile.skipped))
        } else {
            eval = []
        }
        self.skipped = skipped.filter { !$0.errors.isEmpty }
    }

    /// One line per file with skipped records: how many, and the first one's error.
    public var skipReport: [String] {
        skipped.map {
            """
            warning: skipped \($0.errors.count) invalid record\($0.errors.count == 1 ? "" : "s") of \($0.file) \
            (data.on_error: skip); the first: \($0.errors[0])
            """
        }
    }

    /// The encoder for `loaded`'s tokenizer and chat template, with this data's task.
    public func encoder(for loaded: LoadedModel) -> ExampleEncoder {
        var encoder = ExampleEncoder(
            tokenizer: loaded.tokenizer, template: loaded.chatTemplate, templateTokens: loaded.templateTokens)
        encoder.task = task
        return encoder
    }

    /// Encoded examples; for classification the held-out examples, and the training examples in
    /// `trainCandidates` (same order as `train`), carry every class's candidate.
    public struct Encoded {
        public var train: [TokenizedExample]
        public var trainCandidates: [ClassificationExample]
        public var eval: [TokenizedExample]
        public var evalClassification: [ClassificationExample]
    }

    /// Encodes every record; an example longer than `maxLength` predicted positions is an error naming its
    /// file and line.
    public func encode(_ encoder: ExampleEncoder, maxLength: Int) throws -> Encoded {
        func checked(_ e: TokenizedExample, _ file: String, _ line: Int) throws -> TokenizedExample {
            guard e.ids.count - 1 <= maxLength else {
                throw DataError(
                    file: file, line: line,
                    problem:
                        """
                        the example has \(e.ids.count) tokens; the run allows \(maxLength + 1) (train.seq + 1). Raise \
                        train.seq (up to the model's maximum) or shorten the example
                        """
                )
            }
            return e
        }
        /// `body`'s errors about the record at `line` of `file` (its chat template, its label) name them.
        func located<T>(_ file: String, _ line: Int, _ body: () throws -> T) throws -> T {
            do { return try body() } catch let e as DataError where e.line == nil {
                throw DataError(file: file, line: line, problem: e.problem)
            } catch let e as FormatError {
                throw DataError(file: file, line: line, problem: e.description)
            }
        }
        /// A labelled record's candidates, each checked; nil for other records.
        func candidates(_ record: Record, _ file: String, _ line: Int) throws -> ClassificationExample? {
            try located(file, line) { try encoder.classificationExample(record) }.map { c in
                ClassificationExample(candidates: try c.candidates.map { try checked($0, file, line) }, label: c.label)
            }
        }
        func example(_ record: Record, _ file: String, _ line: Int) throws -> TokenizedExample {
            try checked(located(file, line) { try encoder.encode(record) }, file, line)
        }
        var train: [TokenizedExample] = [], trainCandidates: [ClassificationExample] = []
        for (line, record) in self.train {
            if let c = try candidates(record, trainPath, line) {  // trained on the gold candidate (train.loss: lm)
                train.append(c.candidates[c.label])
                trainCandidates.append(c)
            } else {
                train.append(try example(record, trainPath, line))
            }
        }
        var eval: [TokenizedExample] = [], classification: [ClassificationExample] = []
        let evalFile = evalPath ?? "eval"
        for (line, record) in self.eval {
            if let c = try candidates(record, evalFile, line) {
                classification.append(c)
            } else {
                eval.append(try example(record, evalFile, line))
            }
        }
        return Encoded(train: train, trainCandidates: trainCandidates, eval: eval, evalClassification: classification)
    }
}
