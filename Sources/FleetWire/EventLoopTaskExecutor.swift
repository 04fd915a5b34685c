import NIOCore
import Synchronization

/// Runs tasks on one NIO event loop: work started from a read (a remote call, a received
/// message) then runs, replies and flushes on the thread that read it, with no thread hop on the
/// way. FleetActors serves calls on it; FleetMPI runs a rank's operations on it.
///
/// It counts what it has queued on the loop and not yet run, so that a ``BusyPoll`` on the loop
/// stops polling when there is work to do.
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop
    private let queued = Atomic<Int>(0)

    package init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queued.add(1, ordering: .relaxed)
        eventLoop.execute {
            self.queued.subtract(1, ordering: .relaxed)
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// Runs `body` on the loop, counted like a job.
    package func execute(_ body: @escaping @Sendable () -> Void) {
        queued.add(1, ordering: .relaxed)
        eventLoop.execute {
            self.queued.subtract(1, ordering: .relaxed)
            body()
        }
    }

    /// Whether jobs or work sent with ``execute(_:)`` wait to run on the loop.
    package var hasQueuedWork: Bool {
        queued.load(ordering: .relaxed) > 0
    }
}
