import Foundation

/// Threads that run jobs in this process: each pulls the next item from one shared queue, so
/// whichever thread is free takes the next job.
///
/// `@unchecked Sendable`: every mutable field is read and written only with `condition` locked.
final class LocalWorkerPool: @unchecked Sendable {
    /// One job: `run` runs and completes it; `abandon` fails it when the pool closes first.
    struct Item: Sendable {
        var run: @Sendable () -> Void
        var abandon: @Sendable () -> Void
    }

    private let condition = NSCondition()
    private var queue: [Item] = []
    private var head = 0
    private var target: Int
    private var live = 0
    private var waiting = 0
    private var closed = false

    init(workers: Int) {
        target = max(1, workers)
        condition.withLock { spawnMissingWorkers() }
    }

    /// How many threads the pool aims for.
    var workers: Int { condition.withLock { target } }

    /// Queues `item`; a waiting thread takes it at once.
    /// - Returns: `false` when the pool is closed (the item is not queued).
    func submit(_ item: Item) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return false }
        queue.append(item)
        if waiting > 0 { condition.signal() }
        return true
    }

    /// Changes the number of threads: new ones start at once; surplus ones leave after their
    /// current job.
    func setWorkers(_ count: Int) {
        condition.withLock {
            target = max(1, count)
            spawnMissingWorkers()
            condition.broadcast()
        }
    }

    /// Stops taking items; threads leave once the queue is empty. Returns the items never
    /// started, for the caller to fail.
    func close() -> [Item] {
        condition.withLock {
            closed = true
            let remaining = Array(queue[head...])
            queue = []
            head = 0
            condition.broadcast()
            return remaining
        }
    }

    private func spawnMissingWorkers() {
        while live < target {
            live += 1
            let thread = Thread { [self] in work() }
            thread.name = "fleet-job-worker"
            thread.start()
        }
    }

    private func work() {
        while let item = next() { item.run() }
    }

    /// The next item, or `nil` when this thread should leave.
    private func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if live > target || (closed && head == queue.count) {
                live -= 1
                return nil
            }
            if head < queue.count {
                let item = queue[head]
                head += 1
                if head == queue.count {
                    queue.removeAll(keepingCapacity: true)
                    head = 0
                } else if head >= 1024, head * 2 >= queue.count {
                    queue.removeFirst(head)
                    head = 0
                }
                return item
            }
            waiting += 1
            condition.wait()
            waiting -= 1
        }
    }
}
