import RealModule
import TensorCore

/// Rotary position embedding: each pair (a, b) of a head at position p turns by angle p·θ^(−2i/E) (frequencies and
/// a factor on cos and sin as the configuration's scaling sets them).
public struct RoPE {
    public let layout: RoPELayout
    /// E
    public let headDim: Int
    /// cos and sin [P, E/2] for the positions `start ..< start + P`.
    private let cos: [Float], sin: [Float]
    public let positionCount: Int
    /// Packed sequences: the table position of each row (its place in its own sample); nil when row r
    /// is at position r mod P.
    public let rowPositions: [Int32]?

    /// Tables for `config`'s heads at positions `start ..< start + count`; `local`: with Gemma 3's local base,
    /// unscaled (``LlamaConfig/turnsLocally(layer:)``).
    public init(_ config: LlamaConfig, start: Int, count: Int, local: Bool = false, rowPositions: [Int32]? = nil) {
        let theta = local ? config.gemma.localRopeTheta ?? config.ropeTheta : config.ropeTheta
        self.init(
            layout: config.ropeLayout, headDim: config.headDim, theta: theta, scaling: local ? nil : config.ropeScaling,
            start: start, count: count, rowPositions: rowPositions)
    }

    /// Tables for the rows of `batch`: positions restart at each packed sample's start.
    public init(_ config: LlamaConfig, batch: TokenBatch, local: Bool = false) {
        self.init(
            config, start: 0, count: batch.length, local: local,
            rowPositions: batch.segmentStarts.map { starts in
                starts.indices.map { Int32($0 % batch.length) - starts[$0] }
            })
    }

    /// Tables for positions `start ..< start + count` (angles computed in Double, stored as Float).
    public init(
        layout: RoPELayout, headDim: Int, theta: Float, scaling: RoPEScaling? = nil, start: Int, count: Int,
        rowPositions: [Int32]? = nil
    ) {
        precondition(
            rowPositions?.allSatisfy { $0 >= 0 && Int($0) < count } ?? true, "RoPE: row positions outside 0..<\(count)")
        self.rowPositions = rowPositions
        self.layout = layout
        self.headDim = headDim
        positionCount = count
        let half = headDim / 2
        let (frequencies, scale) =
            scaling?.frequencies(theta: Double(theta), headDim: headDim, positions: start + count)
            ?? (RoPE.frequencies(theta: Double(theta), headDim: headDim), 1)
        var c = [Float](repeating: 0, count: count * half), s = c
        for p in 0..<count {
            for i in 0..<half {
                let angle = Double(start + p) * frequencies[i]
                c[p * half + i] = Float(scale * Double.cos(angle))
                s[p * half + i] = Float(scale * Double.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// The unscaled inverse frequencies θ^(−2i/E) of the E/2 pairs.
    public static func frequencies(theta: Double, headDim e: Int) -> [Double] {
        (0..<e / 2).map { Double.pow(theta, -Double(2 * $0) / Double(e)) }
    }

    /// Rotates x [N, heads·E] in place; row r is at table position r mod P (or `rowPositions[r]`). `inverse`
    /// applies the transpose, which is the backward pass: the other way round, with the same factor on cos and sin.
    public func apply(_ x: UnsafeMutablePointer<Float>, rows n: Int, heads: Int, inverse: Bool = false) {
        let e = headDim, half = e / 2, width = heads * e, p = positionCount
        let (stride, partner) = layout == .rotateHalf ? (1, half) : (2, 1)
        let sign: Float = inverse ? -1 : 1
        nonisolated(unsafe) let x = x  // tasks own disjoint rows
        let positions = rowPositions
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                nonisolated(unsafe) let (cp, sp) = (cb.baseAddress!, sb.baseAddress!)
                Parallel.forEachChunk(n, grain: max(1, 8192 / width)) { rows in
                    for r in rows {
                        let at = positions.map { Int($0[r]) } ?? r % p
                        let c = cp + at * half, s = sp + at * half
                        for h in 0..<heads {
                            let head = x + r * width + h * e
                            for i in 0..<half {
                                let ia = i * stride, ib = ia + partner
                                let a = head[ia], b = head[ib], si = sign * s[i]
                                head[ia] = a * c[i] - b * si
                                head[ib] = a * si + b * c[i]
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The RoPE tables of one pass, by layer: one set, or two where Gemma 3's sliding layers turn at their own base.
struct LayerRoPE {
    private let global: RoPE, local: RoPE?
    private let config: LlamaConfig

    init(_ config: LlamaConfig, _ make: (_ local: Bool) -> RoPE) {
        self.config = config
        global = make(false)
        local = config.gemma.localRopeTheta == nil ? nil : make(true)
    }

    subscript(layer l: Int) -> RoPE { config.turnsLocally(layer: l) ? local ?? global : global }
}
