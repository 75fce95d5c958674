import Foundation
import Llama
import TensorCore

/// Writes a loaded model as a `llama`-, (with q/k/v biases) `qwen2`-, (with per-head q/k norms) `qwen3`- or `gemma`-,
/// `gemma2`-, `gemma3`-architecture GGUF file that llama.cpp reads: the architecture metadata, the tokenizer (tokens,
/// merges or scores, token types, special ids, chat template) and the tensors named as llama.cpp's converter names
/// them, with the query and key rows in its RoPE order (adjacent pairs for llama, halves for the others) and Gemma's
/// norm weights stored as 1 + w.
extension GGUFModel {
    /// The tensor types export writes; 1-D tensors (the norms) are always F32, as llama.cpp's converter keeps them.
    public static let exportTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0]

    /// Writes `loaded` to `path` with its matrices in `type`. Returns what was written otherwise than asked (a matrix
    /// whose rows do not fill Q8_0 blocks of 32 is written F16).
    @discardableResult
    public static func export(_ loaded: LoadedModel, to path: String, type: GGMLType) throws -> [String] {
        guard exportTypes.contains(type) else {
            throw FormatError(
                file: path,
                problem: "GGUF export writes \(exportTypes.map(\.name).joined(separator: ", ")), not \(type.name)",
                fix: "Choose one of those types.")
        }
        let m = loaded.model, c = m.config
        let gemma = GGUFGemma.architecture(c)
        let arch =
            gemma ?? (c.fusedProjections ? "phi3" : c.queryKeyNorm ? "qwen3" : c.attentionBias ? "qwen2" : "llama")
        if let gemma, let problem = GGUFGemma.mismatch(c, arch: gemma) {
            throw FormatError(
                file: path, problem: "\(problem), so a GGUF file would not run this model",
                fix: "Export it as a Hugging Face directory (--format hf).")
        }
        var notes: [String] = []
        // as llama.cpp's own converter writes Mistral: no window in the file (Gemma's window is written)
        if let w = c.slidingWindow, gemma == nil {
            notes.append(
                """
                llama.cpp's \(arch) architecture attends to the whole context, without the model's sliding window: \
                its results equal ours up to \(w) tokens of context, not beyond
                """)
        }
        // llama.cpp's llama architecture rotates adjacent pairs; the others rotate halves, as Hugging Face does.
        let target: RoPELayout = arch == "llama" ? .adjacentPairs : .rotateHalf
        /// Parameter `id` as llama.cpp's converter writes it: RoPE rows in its order, Gemma's norms as 1 + w.
        func values(_ id: ParameterID) -> [Float] {
            let info = m.layout.parameters[id], offset = info.role.kind == .scale ? c.normOffset : 0
            let values = m.store.withFloats(id) { w in w.map { $0 + offset } }
            guard c.ropeLayout != target && (info.role == .query || info.role == .key) else { return values }
            let (heads, columns) = (info.shape[0] / c.headDim, info.shape[1])
            return target == .adjacentPairs
                ? adjacentPairOrder(values, heads: heads, headDim: c.headDim, columns: columns)
                : HFDirectory.rotateHalfOrder(values, heads: heads, headDim: c.headDim, columns: columns)
        }
        var tensors: [GGUFWriter.Tensor] = []
        // Phi-3's stacked projections are written stacked, as its checkpoint holds them (at their first part)
        let stacked = FusedProjections.places(m.layout, c)
        for (id, info) in m.layout.parameters.enumerated() where !(c.tiedEmbeddings && info.role == .head) {
            if let place = stacked[id], place.row > 0 { continue }
            let (name, shape, parts) =
                stacked[id].map { (stackedTensorName($0.group, m.layout), $0.group.shape, $0.group.parts) }
                ?? (tensorName(info), info.shape, [id])
            var tensorType = shape.count == 1 ? GGMLType.f32 : type
            if tensorType == .q8_0, shape[1] % 32 != 0 {
                tensorType = .f16
                notes.append("\(name): rows of \(shape[1]) do not fill Q8_0 blocks of 32; written F16")
            }
            tensors.append(
                GGUFWriter.Tensor(name: name, dims: shape.reversed(), type: tensorType) {
                    encode(parts.flatMap(values), as: tensorType)
                })
        }
        // linear and YaRN as metadata; Llama 3's and per-pair factors as the rope_freqs tensor, Phi-3's LongRoPE as its
        // two factor tensors, as llama.cpp's converter does
        var scalingMetadata: [(String, GGUFWriter.Value)] = []
        if let scaling = c.ropeScaling {
            switch scaling {
            case .linear(let factor):
                scalingMetadata = [
                    ("\(arch).rope.scaling.type", .string("linear")),
                    ("\(arch).rope.scaling.factor", .float32(Float(factor))),
                ]
            case .llama3, .frequencyFactors:
                let factors = frequencyFactors(scaling, theta: Double(c.ropeTheta), headDim: c.headDim).map(Float.init)
                tensors.append(
                    GGUFWriter.Tensor(name: frequencyFactorsTensor, dims: [factors.count], type: .f32) {
                        encode(factors, as: .f32)
                    })
            case .yarn(let factor, let original, let fast, let slow, let truncate, let attention):
                // llama.cpp's YaRN: the default attention factor, truncated correction dims
                guard truncate, attention == RoPEScaling.yarnAttentionFactor(factor: factor) else {
                    throw FormatError(
                        file: path, problem: "the model's YaRN (\(scaling)) is not the form llama.cpp computes",
                        fix: "Export it as a Hugging Face directory (--format hf).")
                }
                scalingMetadata = [
                    ("\(arch).rope.scaling.type", .string("yarn")),
                    ("\(arch).rope.scaling.factor", .float32(Float(factor))),
                    ("\(arch).rope.scaling.original_context_length", .uint32(UInt32(original))),
                    ("\(arch).rope.scaling.yarn_beta_fast", .float32(Float(fast))),
                    ("\(arch).rope.scaling.yarn_beta_slow", .float32(Float(slow))),
                ]
            case .longRoPE(let short, let long, let original, let attention) where arch == "phi3":
                for (name, factors) in [(ropeFactorsShort, short), (ropeFactorsLong, long)] {
                    tensors.append(
                        GGUFWriter.Tensor(name: name, dims: [factors.count], type: .f32) {
                            encode(factors.map(Float.init), as: .f32)
                        })
                }
                scalingMetadata = [
                    ("\(arch).rope.scaling.attn_factor", .float32(Float(attention))),
                    ("\(arch).rope.scaling.original_context_length", .uint32(UInt32(original))),
                ]
                notes.append(
                    """
                    llama.cpp turns by LongRoPE's long factors whenever its context size, which it rounds up to a \
                    multiple of 256, exceeds \(original) tokens; we choose them by the sequence's length, so the two \
                    differ on shorter sequences in a longer context
                    """)
            case .dynamic, .longRoPE:
                throw FormatError(
                    file: path,
                    problem: "the model uses RoPE scaling \(scaling), which llama.cpp's \(arch) does not compute",
                    fix: "Export it as a Hugging Face directory (--format hf).")
            }
        }
        let fileType: UInt32 = [.f32: 0, .f16: 1, .q8_0: 7, .bf16: 32][type] ?? 0
        var metadata: [(String, GGUFWriter.Value)] = [
            ("general.architecture", .string(arch)), ("general.name", .string("LeanTune export")),
            ("general.file_type", .uint32(fileType)),
            ("\(arch).context_length", .uint32(UInt32(c.maxSequenceLength))),
            ("\(arch).embedding_length", .uint32(UInt32(c.dim))),
            ("\(arch).block_count", .uint32(UInt32(c.layerCount))),
            ("\(arch).feed_forward_length", .uint32(UInt32(c.ffnDim))),
            ("\(arch).attention.head_count", .uint32(UInt32(c.headCount))),
            ("\(arch).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("\(arch).attention.layer_norm_rms_epsilon", .float32(c.normEpsilon)),
            ("\(arch).rope.freq_base", .float32(c.ropeTheta)),
            ("\(arch).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(arch).vocab_size", .uint32(UInt32(c.vocabSize))),
        ]
        if c.explicitHeadDim != nil {  // llama.cpp's default is embedding_length / head_count
            metadata += [
                ("\(arch).attention.key_length", .uint32(UInt32(c.headDim))),
                ("\(arch).attention.value_length", .uint32(UInt32(c.headDim))),
            ]
        }
        if c.gemma.outputNorms {
            metadata.append(("\(arch).attention.sliding_window", .uint32(UInt32(GGUFGemma.window(c)))))
        }
        if let a = c.gemma.attentionSoftcap, let f = c.gemma.logitSoftcap {
            metadata += [
                ("\(arch).attn_logit_softcapping", .float32(a)), ("\(arch).final_logit_softcapping", .float32(f)),
            ]
        }
        metadata += scalingMetadata
        metadata += try tokenizerMetadata(loaded, path: path)
        try GGUFWriter.write(metadata: metadata, tensors: tensors, to: path)
        return notes
    }

    /// `tokenizer.ggml.*` and the chat template.
    static func tokenizerMetadata(_ loaded: LoadedModel, path: String) throws -> [(String, GGUFWriter.Value)] {
        let tokenizer = loaded.tokenizer
        var out: [(String, GGUFWriter.Value)] = []
        // Token types: 1 normal, 2 unknown, 3 control, 6 byte.
        switch tokenizer {
        case let t as ByteLevelBPETokenizer:
            let special = Set(t.specialTokens.values)
            guard
                let pre = GGUFTokenizer.preTokenizers.sorted(by: { $0.key < $1.key }).first(where: {
                    $0.value.0 == t.splitPattern && $0.value.1 == t.isolatesDigits
                })?.key
            else {
                throw FormatError(
                    file: path, problem: "the tokenizer's pre-tokenizer has no GGUF name", fix: "Export as --format hf."
                )
            }
            out += [
                ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(pre)),
                ("tokenizer.ggml.tokens", .strings(t.tokens)),
                ("tokenizer.ggml.token_type", .int32s(t.tokens.indices.map { special.contains(Int32($0)) ? 3 : 1 })),
                ("tokenizer.ggml.merges", .strings(t.merges)),
            ]
        case let t as ScoredPieceTokenizer:
            let special = Set(t.specialTokens.values).union(t.stopTokens).union([t.bos].compactMap { $0 })
            let tokens = t.pieces.map {
                String(decoding: $0, as: UTF8.self).replacingOccurrences(of: " ", with: "\u{2581}")
            }
            out += sentencePieceMetadata(tokens, scores: t.scores, special: special, spacePrefix: t.addsSpacePrefix)
        case let t as SentencePieceBPETokenizer:
            // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose joined token scores highest: each
            // token scores minus the rank of the first merge that makes it, so merges happen in rank order
            var scores = [Float](repeating: 0, count: t.tokens.count), made = Set<Int>()
            let ids = Dictionary(t.tokens.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            for (rank, merge) in t.mergeList.enumerated() {
                let joined = merge.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).joined()
                guard let id = ids[joined], made.insert(id).inserted else {
                    continue
                }
                scores[id] = -Float(rank)
            }
            let special = Set(t.specialTokens.values).union(t.stopTokens).union([t.bos].compactMap { $0 })
            out += sentencePieceMetadata(t.tokens, scores: scores, special: special, spacePrefix: t.prependsSpace)
        default:
            throw FormatError(
                file: path, problem: "a \(type(of: tokenizer)) has no GGUF tokenizer form yet",
                fix: "Export as a Hugging Face directory (--format hf).")
        }
        if let bos = tokenizer.bos { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        out.append(("tokenizer.ggml.add_bos_token", .bool(tokenizer.bos != nil)))
        if let eos = tokenizer.stopTokens.min() { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        if let template = loaded.chatTemplateSource { out.append(("tokenizer.chat_template", .string(template))) }
        return out
    }

    /// `tokenizer.ggml.*` of llama.cpp's SentencePiece tokenizer (model "llama"). Token types: 1 normal, 2 unknown,
    /// 3 control, 6 byte.
    static func sentencePieceMetadata(
        _ tokens: [String], scores: [Float], special: Set<Int32>, spacePrefix: Bool
    ) -> [(String, GGUFWriter.Value)] {
        let types: [Int32] = tokens.enumerated().map { i, token in
            if token == "<unk>" { return 2 }
            if special.contains(Int32(i)) { return 3 }
            let isByte = token.count == 6 && token.hasPrefix("<0x") && token.hasSuffix(">")
            return isByte ? 6 : 1
        }
        return [
            ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.tokens", .strings(tokens)),
            ("tokenizer.ggml.scores", .float32s(scores)), ("tokenizer.ggml.token_type", .int32s(types)),
            ("tokenizer.ggml.add_space_prefix", .bool(spacePrefix)),
        ]
    }

    /// Rows of a query or key matrix from rotate-half order (i, i+E/2) to adjacent-pair order (2i, 2i+1), per head:
    /// what llama.cpp's converter does to Hugging Face weights.
    static func adjacentPairOrder(_ w: [Float], heads: Int, headDim e: Int, columns: Int) -> [Float] {
        var out = w
        for h in 0..<heads {
            for i in 0..<e / 2 {
                for (from, to) in [(i, 2 * i), (i + e / 2, 2 * i + 1)] {
                    let src = (h * e + from) * columns, dst = (h * e + to) * columns
                    out.replaceSubrange(dst..<dst + columns, with: w[src..<src + columns])
                }
            }
        }
        return out
    }

    /// `values` as the bytes of `type`: F32, F16 and BF16 rounded to nearest; Q8_0 as llama.cpp quantizes it, per
    /// block of 32 d = max|x|/127 (stored F16) and q = round(x/d).
    static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(type.byteCount(values.count))
        func half(_ x: Float) { withUnsafeBytes(of: Float16(x).bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        switch type {
        case .f16: for x in values { half(x) }
        case .bf16:
            for x in values { withUnsafeBytes(of: Conversions.bf16(x).littleEndian) { out.append(contentsOf: $0) } }
        case .q8_0:
            for start in stride(from: 0, to: values.count, by: 32) {
                let block = values[start..<start + 32]
                let d = (block.map(abs).max() ?? 0) / 127, inverse: Float = d > 0 ? 1 / d : 0
                half(d)
                for x in block { out.append(UInt8(bitPattern: Int8(max(-127, min(127, (x * inverse).rounded()))))) }
            }
        default: for x in values { withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        return out
    }
}
