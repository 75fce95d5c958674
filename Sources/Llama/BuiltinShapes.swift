extension LlamaConfig {
    /// Named model shapes for benchmarks and estimates (weights are not included).
    public static let builtinShapes: [String: LlamaConfig] = [
        // SmolLM2-135M: 134.5 M parameters, GQA 9/3, tied embeddings.
        "smollm2-135m": LlamaConfig(
            dim: 576, ffnDim: 1536, layerCount: 30, headCount: 9, kvHeadCount: 3, vocabSize: 49152,
            maxSequenceLength: 8192, normEpsilon: 1e-5, ropeTheta: 100_000, ropeLayout: .rotateHalf,
            tiedEmbeddings: true),
        // llama2.c stories15M.
        "s15m": LlamaConfig(
            dim: 288, ffnDim: 768, layerCount: 6, headCount: 6, kvHeadCount: 6, vocabSize: 32000,
            maxSequenceLength: 256, normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .adjacentPairs,
            tiedEmbeddings: true),
        // llama2.c stories260K.
        "stories260k": LlamaConfig(
            dim: 64, ffnDim: 172, layerCount: 5, headCount: 8, kvHeadCount: 4, vocabSize: 512,
            maxSequenceLength: 512, normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .adjacentPairs,
            tiedEmbeddings: true),
        // GaLore's llama_9m blocks (hidden 128, intermediate 352, 4 heads, 4 layers) with stories260K's 512-token
        // vocabulary (tok512.bin): 0.9 M parameters, for pre-training from scratch on a CPU.
        "llama-9m-tok512": LlamaConfig(
            dim: 128, ffnDim: 352, layerCount: 4, headCount: 4, kvHeadCount: 4, vocabSize: 512,
            maxSequenceLength: 1024, normEpsilon: 1e-6, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false
        ),
        // Shapes where memory matters (config.json of each Hugging Face release; weights are not included).
        // Llama 3.2 1B / 3B: GQA 32/8 and 24/8, tied embeddings, 128K context with llama3 RoPE scaling (factor 32).
        "llama-3.2-1b": LlamaConfig(
            dim: 2048, ffnDim: 8192, layerCount: 16, headCount: 32, kvHeadCount: 8, vocabSize: 128_256,
            maxSequenceLength: 131_072, normEpsilon: 1e-5, ropeTheta: 500_000, ropeLayout: .rotateHalf,
            ropeScaling: .llama3(
                factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 8192),
            tiedEmbeddings: true),
        "llama-3.2-3b": LlamaConfig(
            dim: 3072, ffnDim: 8192, layerCount: 28, headCount: 24, kvHeadCount: 8, vocabSize: 128_256,
            maxSequenceLength: 131_072, normEpsilon: 1e-5, ropeTheta: 500_000, ropeLayout: .rotateHalf,
            ropeScaling: .llama3(
                factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 8192),
            tiedEmbeddings: true),
        // Llama 2 7B: 6.74 B parameters, multi-head attention, untied head.
        "llama-2-7b": LlamaConfig(
            dim: 4096, ffnDim: 11008, layerCount: 32, headCount: 32, kvHeadCount: 32, vocabSize: 32000,
            maxSequenceLength: 4096, normEpsilon: 1e-5, ropeTheta: 10000, ropeLayout: .rotateHalf, tiedEmbeddings: false
        ),
        // Llama 3.1 8B: 8.03 B parameters, GQA 32/8, untied head, llama3 RoPE scaling (factor 8).
        "llama-3.1-8b": LlamaConfig(
            dim: 4096, ffnDim: 14336, layerCount: 32, headCount: 32, kvHeadCount: 8, vocabSize: 128_256,
            maxSequenceLength: 131_072, normEpsilon: 1e-5, ropeTheta: 500_000, ropeLayout: .rotateHalf,
            ropeScaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContextLength: 8192),
            tiedEmbeddings: false),
        // Mistral 7B v0.3: 7.25 B parameters, GQA 32/8, 32768 tokens, no sliding window (v0.1's 4096-token window
        // is not modelled).
        "mistral-7b": LlamaConfig(
            dim: 4096, ffnDim: 14336, layerCount: 32, headCount: 32, kvHeadCount: 8, vocabSize: 32768,
            maxSequenceLength: 32768, normEpsilon: 1e-5, ropeTheta: 1_000_000, ropeLayout: .rotateHalf,
            tiedEmbeddings: false),
    ]
}
