/// A timer of the loop: at `deadline` (CLOCK_MONOTONIC nanoseconds) it finishes wait `waiter`.
struct Timer {
    enum Action {
        /// Resume the waiter (a sleep).
        case resume
        /// Fail the waiter with ``Timeout``.
        case timeout(operation: String, after: Duration)
    }

    var deadline: UInt64
    var waiter: UInt64
    var action: Action
}

/// A binary min-heap of timers by deadline (ties: the earlier waiter first). Loop thread only.
struct TimerHeap {
    private var storage: [Timer] = []

    var count: Int { storage.count }

    /// The earliest deadline, or nil when there are no timers.
    var earliest: UInt64? { storage.first?.deadline }

    mutating func push(_ timer: Timer) {
        storage.append(timer)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(storage[child], storage[parent]) else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    mutating func popDue(now: UInt64) -> Timer? {
        guard let first = storage.first, first.deadline <= now else { return nil }
        let last = storage.removeLast()
        if !storage.isEmpty {
            storage[0] = last
            siftDown(0)
        }
        return first
    }

    /// Drops the timers matching `predicate` and restores the heap.
    mutating func removeAll(where predicate: (Timer) -> Bool) {
        storage.removeAll(where: predicate)
        for index in stride(from: storage.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < storage.count && precedes(storage[left], storage[smallest]) { smallest = left }
            if right < storage.count && precedes(storage[right], storage[smallest]) { smallest = right }
            if smallest == parent { return }
            storage.swapAt(parent, smallest)
            parent = smallest
        }
    }

    private func precedes(_ a: Timer, _ b: Timer) -> Bool {
        a.deadline < b.deadline || (a.deadline == b.deadline && a.waiter < b.waiter)
    }
}
