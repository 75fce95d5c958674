import TensorCore

/// One weight matrix as QFT stores it (SqueezeLLM's dense-and-sparse split): the `outlierCount`
/// largest-magnitude entries in fp32 in a CSR part, everything else as block-wise INT8 (``Int8Blocks``)
/// with the outlier positions zero. No fp32 copy of the matrix exists; ``decode(into:)`` rebuilds it.
///
/// Outlier positions stay fixed between ``reselect(_:rounding:)`` calls (QFT refreshes its thresholds
/// lazily, once per epoch); their values are updated exactly, in fp32, on every ``encode(_:rounding:)``.
final class DenseSparseTensor {
    let rows: Int, columns: Int, blockSize: Int
    let q: AlignedBuffer<Int8>
    let scales: AlignedBuffer<Float>
    /// CSR: row r's outliers are entries rowStarts[r] ..< rowStarts[r + 1] of `outlierColumns` / `outlierValues`.
    let rowStarts: AlignedBuffer<Int32>
    let outlierColumns: AlignedBuffer<Int32>
    let outlierValues: AlignedBuffer<Float>

    var count: Int { rows * columns }

    init(rows: Int, columns: Int, blockSize: Int, outlierCount: Int, ledger: MemoryLedger) {
        (self.rows, self.columns, self.blockSize) = (rows, columns, blockSize)
        q = AlignedBuffer(count: rows * columns, category: .weights, ledger: ledger)
        scales = AlignedBuffer(
            count: Int8Blocks.blockCount(rows * columns, blockSize: blockSize), category: .weights, ledger: ledger)
        rowStarts = AlignedBuffer(count: rows + 1, category: .weights, ledger: ledger)
        outlierColumns = AlignedBuffer(count: outlierCount, category: .weights, ledger: ledger)
        outlierValues = AlignedBuffer(count: outlierCount, category: .weights, ledger: ledger)
    }

    /// Bytes of a tensor of this shape: 1 per value, 4 per block scale, 8 per outlier, 4 per row start.
    static func bytes(rows: Int, columns: Int, blockSize: Int, outlierCount: Int) -> Int {
        rows * columns + 4 * Int8Blocks.blockCount(rows * columns, blockSize: blockSize) + 8 * outlierCount + 4
            * (rows + 1)
    }

    /// The tensor's buffers, named after `name`, for checkpoints.
    func state(_ name: String) -> [StateTensor] {
        [
            StateTensor(name + ".q", q), StateTensor(name + ".scales", scales),
            StateTensor(name + ".outlier_rows", rowStarts),
            StateTensor(name + ".outlier_columns", outlierColumns),
            StateTensor(name + ".outlier_values", outlierValues),
        ]
    }

    /// The fp32 matrix: dense part dequantized, outliers written over their (zero) positions.
    func decode(into x: UnsafeMutablePointer<Float>) {
        Int8Blocks.dequantize(q.pointer, scales: scales.pointer, count: count, blockSize: blockSize, into: x)
        forEachOutlier { j, position in x[position] = outlierValues.pointer[j] }
    }

    /// Stores `x` (which is overwritten): the outliers' values are taken exactly, their positions zeroed,
    /// and the rest quantized with `rounding`.
    func encode(_ x: UnsafeMutablePointer<Float>, rounding: Rounding) {
        forEachOutlier { j, position in
            outlierValues.pointer[j] = x[position]
            x[position] = 0
        }
        Int8Blocks.quantize(
            x, count: count, blockSize: blockSize, into: q.pointer, scales: scales.pointer, rounding: rounding)
    }

    /// Chooses the outlier positions anew, the largest magnitudes of `x`, then ``encode(_:rounding:)``s it.
    func reselect(_ x: UnsafeMutablePointer<Float>, rounding: Rounding) {
        let picked = MagnitudeSelection.largest(UnsafeBufferPointer(start: x, count: count), k: outlierColumns.count)
        var row = 0
        rowStarts.pointer[0] = 0
        for (j, position) in picked.enumerated() {  // increasing positions: rows in order
            while position >= (row + 1) * columns {
                row += 1
                rowStarts.pointer[row] = Int32(j)
            }
            outlierColumns.pointer[j] = Int32(position - row * columns)
        }
        while row < rows {
            row += 1
            rowStarts.pointer[row] = Int32(picked.count)
        }
        encode(x, rounding: rounding)
    }

    private func forEachOutlier(_ body: (_ j: Int, _ position: Int) -> Void) {
        for r in 0..<rows {
            for j in Int(rowStarts.pointer[r])..<Int(rowStarts.pointer[r + 1]) {
                body(j, r * columns + Int(outlierColumns.pointer[j]))
            }
        }
    }

    /// The layout read from a checkpoint is a valid CSR of this shape (row starts non-decreasing from 0 to
    /// the outlier count, columns in range): nothing out of bounds can be written.
    func checkLayout() -> Bool {
        let s = rowStarts.pointer
        guard s[0] == 0, Int(s[rows]) == outlierColumns.count else { return false }
        for r in 0..<rows where s[r] > s[r + 1] { return false }
        for j in 0..<outlierColumns.count where !(0..<Int32(columns)).contains(outlierColumns.pointer[j]) {
            return false
        }
        return true
    }
}
