import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// The loop's thread, once ``isCurrent`` has seen it (zero before): an event loop runs on one
    /// thread for its whole life.
    private let thread = Atomic<UInt>(0)

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

    /// Whether this runs on the loop's thread (`eventLoop.inEventLoop`), told by comparing two
    /// thread handles once the thread is known: no call through `EventLoop`, no reference
    /// counting. Operations that ask on every message (a rank's sends and receives) ask here.
    /// For loops that keep one thread for life (`MultiThreadedEventLoopGroup`'s), not an
    /// `EmbeddedEventLoop`, which calls every thread its own.
    package var isCurrent: Bool {
        let known = thread.load(ordering: .relaxed)
        if known != 0 { return UInt(bitPattern: Int(bitPattern: pthread_self())) == known }
        guard eventLoop.inEventLoop else { return false }
        thread.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .relaxed)
        return true
    }

    /// Whether jobs or work sent with ``execute(_:)`` or ``executeOnLoop(_:)`` wait to run on the
    /// loop, through this executor or any other of the same loop.
    package var hasQueuedWork: Bool {
        work.isWaiting
    }
}
