import NIOCore
import Synchronization

/// What Fleet has queued on one event loop and not run yet, counted across every
/// ``EventLoopTaskExecutor`` of that loop: a ``BusyPoll`` stops polling as soon as any
/// connection on the loop has work waiting, not only its own.
package final class LoopWork: Sendable {
    private let queued = Atomic<Int>(0)
    /// The loop counted, to tell it from a later loop at the same address. Held strongly: a
    /// weak reference would give the loop a side table, and then every retain of the loop
    /// anywhere (NIO makes many) would take the runtime's slow path. The executors that
    /// share this counter hold the loop anyway.
    private let loop: any EventLoop

    /// The counters, by event loop; an entry lives while an executor of its loop does.
    private static let registry = Mutex<[ObjectIdentifier: Weak]>([:])

    private struct Weak {
        weak var work: LoopWork?
    }

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    /// The counter of `loop`, shared by everything that queues work on it.
    static func of(_ loop: any EventLoop) -> LoopWork {
        registry.withLock { counters in
            let key = ObjectIdentifier(loop)
            if let work = counters[key]?.work, work.loop === loop { return work }
            // Forget the loops whose executors are all gone.
            counters = counters.filter { $0.value.work != nil }
            let work = LoopWork(loop: loop)
            counters[key] = Weak(work: work)
            return work
        }
    }

    func added() { queued.add(1, ordering: .relaxed) }
    func ran() { queued.subtract(1, ordering: .relaxed) }

    /// Whether work waits to run on the loop.
    var isWaiting: Bool { queued.load(ordering: .relaxed) > 0 }
}
