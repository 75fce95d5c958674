extension LlamaConfig {
    /// Named model shapes for benchmarks and estimates (weights are not included).
    public static let builtinShapes: [String: LlamaConfig] = [
        // SmolLM2-135M: 134.5 M parameters, GQA 9/3, tied embeddings.
        "smollm2-135m": LlamaConfig(
            dim: 576, ffnDim: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, vocabSize: 49152,
            maxSequenceLength: 8192, normEpsilon: 1e-5, ropeTheta: 100_000, ropeLayout: .rotateHalf, tiedEmbeddings: true),
        // llama2.c stories15M.
        "s15m": LlamaConfig(
            dim: 288, ffnDim: 768, layerCount: 6, headCount: 6, kvHeadCount: 6, vocabSize: 32000,
            maxSequenceLength: 256, normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .adjacentPairs, tiedEmbeddings: true),
        // llama2.c stories260K.
        "stories260k": LlamaConfig(
            dim: 64, ffnDim: 172, layerCount: 5, headCount: 8, kvHeadCount: 4, vocabSize: 512,
            maxSequenceLength: 512, normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .adjacentPairs, tiedEmbeddings: true),
        // GaLore's llama_9m blocks (hidden 128, intermediate 352, 4 heads, 4 layers) with stories260K's 512-token
        // vocabulary (tok512.bin): 0.9 M parameters, for pre-training from scratch on a CPU.
        "llama-9m-tok512": LlamaConfig(
            dim: 128, ffnDim: 352, layerCount: 4, headCount: 4, kvHeadCount: 4, vocabSize: 512,
            maxSequenceLength: 1024, normEpsilon: 1e-6, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false),
    ]
}
