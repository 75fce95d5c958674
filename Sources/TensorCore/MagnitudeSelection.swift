/// Finding the k largest-magnitude values of a tensor in linear time, by radix selection on the bit
/// patterns of |x| (for non-negative floats the bit pattern orders like the value): a histogram of the
/// high 16 bits finds the bin that holds the k-th largest, a second histogram of the low 16 bits inside
/// that bin finds its exact value.
public enum MagnitudeSelection {
    /// The indices of the `k` largest |x| in increasing index order; among values equal to the k-th
    /// largest, the lowest indices win. NaN counts as larger than every number.
    public static func largest(_ x: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        precondition(k >= 0 && k <= x.count, "MagnitudeSelection: k = \(k) of \(x.count) values")
        guard k > 0 else { return [] }
        @inline(__always) func key(_ v: Float) -> UInt32 { v.isNaN ? .max : v.magnitude.bitPattern }
        var high = [Int](repeating: 0, count: 1 << 16)
        for v in x { high[Int(key(v) >> 16)] += 1 }
        var above = 0, bin = (1 << 16) - 1  // values in bins above `bin`
        while above + high[bin] < k {
            above += high[bin]
            bin -= 1
        }
        var low = [Int](repeating: 0, count: 1 << 16)
        for v in x where Int(key(v) >> 16) == bin { low[Int(key(v) & 0xFFFF)] += 1 }
        var sub = (1 << 16) - 1
        while above + low[sub] < k {
            above += low[sub]
            sub -= 1
        }
        let threshold = UInt32(bin) << 16 | UInt32(sub)
        var ties = k - above  // how many values equal to the threshold are taken
        var picked: [Int] = []
        picked.reserveCapacity(k)
        for (i, v) in x.enumerated() {
            let kv = key(v)
            if kv > threshold {
                picked.append(i)
            } else if kv == threshold, ties > 0 {
                picked.append(i)
                ties -= 1
            }
        }
        return picked
    }
}
