/// Greedy pair merging, the core of BPE and of SentencePiece's score merging: merge the adjacent pair of best
/// priority (the lowest value, the leftmost on ties) until no adjacent pair merges. The symbols form a linked
/// list and the candidate pairs a heap, so a piece of n symbols costs O(n log n), not the O(n²) of rescanning
/// after every merge: a 40 KB word without spaces takes milliseconds, not seconds.
enum PairMerge {
    /// Merges `symbols` in place; `candidate(left, right)` gives the pair's priority and merged symbol, or nil.
    static func apply(_ symbols: inout [Int32], _ candidate: (Int32, Int32) -> (priority: Double, merged: Int32)?) {
        let n = symbols.count
        guard n > 1 else { return }
        var next = Array(1...n), previous = Array(-1..<(n - 1)), heap = CandidateHeap()
        for i in 0..<(n - 1) {
            if let c = candidate(symbols[i], symbols[i + 1]) { heap.push(c.priority, i) }
        }
        var alive = [Bool](repeating: true, count: n)
        while let (priority, i) = heap.pop() {
            // An entry is stale when its left symbol is gone or the pair there changed priority.
            guard alive[i], next[i] < n, let c = candidate(symbols[i], symbols[next[i]]), c.priority == priority else {
                continue
            }
            let j = next[i]
            symbols[i] = c.merged
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { previous[next[j]] = i }
            if previous[i] >= 0, let l = candidate(symbols[previous[i]], symbols[i]) {
                heap.push(l.priority, previous[i])
            }
            if next[i] < n, let r = candidate(symbols[i], symbols[next[i]]) { heap.push(r.priority, i) }
        }
        var merged: [Int32] = [], i = 0
        while i < n {
            merged.append(symbols[i])
            i = next[i]
        }
        symbols = merged
    }
}

/// A binary min-heap of (priority, position), ordered by priority and then position (the leftmost pair first).
private struct CandidateHeap {
    private var items: [(priority: Double, index: Int)] = []

    private static func less(_ a: (priority: Double, index: Int), _ b: (priority: Double, index: Int)) -> Bool {
        a.priority < b.priority || (a.priority == b.priority && a.index < b.index)
    }

    mutating func push(_ priority: Double, _ index: Int) {
        items.append((priority, index))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (Double, Int)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, Self.less(items[left], items[smallest]) { smallest = left }
                if right < items.count, Self.less(items[right], items[smallest]) { smallest = right }
                guard smallest != parent else { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (top.priority, top.index)
    }
}
