import NIOCore

/// Runs tasks on one NIO event loop: work started from a read (a remote call, a received
/// message) then runs, replies and flushes on the thread that read it, with no thread hop on the
/// way. FleetActors serves calls on it; FleetMPI runs a rank's operations on it.
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
