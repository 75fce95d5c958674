import Foundation

/// A first-in first-out queue of at most `capacity` items between two threads: `push` waits while it is full and
/// `pop` while it is empty. Closing it wakes both sides: a push then fails, and a pop fails once the queue is empty.
/// LSP-Offload's two transfer directions are two of these.
final class BoundedQueue<Item>: @unchecked Sendable {
    enum Failure: Error, Equatable { case closed, timedOut }

    let capacity: Int
    private let condition = NSCondition()
    private var items: [Item] = []
    private var head = 0
    private var closed = false

    init(capacity: Int) {
        precondition(capacity >= 1, "BoundedQueue: capacity \(capacity)")
        self.capacity = capacity
    }

    func push(_ item: Item) throws(Failure) {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !closed { condition.wait() }
        guard !closed else { throw .closed }
        items.append(item)
        condition.broadcast()
    }

    /// The oldest item; waits at most `timeout` seconds (nil: as long as it takes).
    func pop(timeout: Double? = nil) throws(Failure) -> Item {
        condition.lock()
        defer { condition.unlock() }
        let deadline = timeout.map { Date(timeIntervalSinceNow: $0) }
        while items.count == head {
            guard !closed else { throw .closed }
            if let deadline {
                guard condition.wait(until: deadline) || items.count > head || closed else { throw .timedOut }
            } else {
                condition.wait()
            }
        }
        let item = items[head]
        head += 1
        if head == items.count { (items, head) = ([], 0) }
        condition.broadcast()
        return item
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
