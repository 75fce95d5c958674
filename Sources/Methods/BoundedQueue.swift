import Foundation

/// A first-in first-out queue of at most `capacity` items between two threads: `push` waits while it is full and
/// `pop` while it is empty. LSP-Offload's two transfer directions are two of these.
final class BoundedQueue<Item>: @unchecked Sendable {
    let capacity: Int
    private let condition = NSCondition()
    private var items: [Item] = []
    private var head = 0

    init(capacity: Int) {
        precondition(capacity >= 1, "BoundedQueue: capacity \(capacity)")
        self.capacity = capacity
    }

    func push(_ item: Item) {
        condition.lock()
        while items.count - head >= capacity { condition.wait() }
        items.append(item)
        condition.broadcast()
        condition.unlock()
    }

    func pop() -> Item {
        condition.lock()
        while items.count == head { condition.wait() }
        let item = items[head]
        head += 1
        if head == items.count { (items, head) = ([], 0) }
        condition.broadcast()
        condition.unlock()
        return item
    }
}
