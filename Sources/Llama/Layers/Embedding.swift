/// Token embedding lookup.
public enum Embedding {
    /// x[n] = table[tokens[n]]; x [N, D], table [V, D].
    public static func forward(
        _ tokens: UnsafeBufferPointer<Int32>, table: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>, dim d: Int
    ) {
        for (n, t) in tokens.enumerated() {
            (x + n * d).update(from: table + Int(t) * d, count: d)
        }
    }

    /// dtable[tokens[n]] += dx[n]. Sequential: rows of repeated tokens collide.
    public static func backward(
        _ tokens: UnsafeBufferPointer<Int32>, _ dx: UnsafePointer<Float>, dTable: UnsafeMutablePointer<Float>,
        dim d: Int
    ) {
        for (n, t) in tokens.enumerated() {
            let dst = dTable + Int(t) * d, src = dx + n * d
            for i in 0..<d { dst[i] += src[i] }
        }
    }
}
