import NIOCore

/// Runs tasks on one NIO event loop: work started from a read (a remote call, a received
/// message) then runs, replies and flushes on the thread that read it, with no thread hop on the
/// way. FleetActors serves calls on it; FleetMPI runs a rank's operations on it.
///
/// What it queues on the loop and has not run yet is counted per loop (``LoopWork``), across
/// all of the loop's executors, so that a ``BusyPoll`` on the loop stops polling when there is
/// work to do.
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop
    private let work: LoopWork

    package init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.work = LoopWork.of(eventLoop)
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        work.added()
        eventLoop.execute {
            self.work.ran()
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// Runs `body` on the loop, counted like a job.
    package func execute(_ body: @escaping @Sendable () -> Void) {
        work.added()
        // The closures hold the executor, not the counter: the counter is weakly registered,
        // and a weakly referenced object takes the runtime's slow path on every retain.
        eventLoop.execute {
            self.work.ran()
            body()
        }
    }

    /// Runs `body` later on the loop, counted like a job. Call on the loop.
    package func executeOnLoop(_ body: @escaping () -> Void) {
        work.added()
        eventLoop.assumeIsolated().execute {
            self.work.ran()
            body()
        }
    }

    /// Whether jobs or work sent with ``execute(_:)`` or ``executeOnLoop(_:)`` wait to run on the
    /// loop, through this executor or any other of the same loop.
    package var hasQueuedWork: Bool {
        work.isWaiting
    }
}
