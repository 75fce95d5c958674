import Llama

/// The number of values of a tensor of shape `dims`, or nil when a dimension is negative or the product
/// overflows or exceeds 2⁴⁰ (no tensor LeanTune reads is larger; ``LlamaConfig`` caps whole models there).
func elementCount(_ dims: [Int]) -> Int? {
    var count = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        guard !overflow, product <= LlamaConfig.parameterLimit else { return nil }
        count = product
    }
    return count
}
