@testable import FleetJobs
import Testing

/// A worker's own record of the jobs it was sent: what ``JobWorker/stop(job:)`` decides on.
@Suite("WaitingJobs")
struct WaitingJobsTests {
    /// The server sends a job's call and, when it gives up on the job, its stop, from tasks of
    /// their own: the stop can arrive first. The job must then never run — else it holds the
    /// worker for as long as it runs, and the server sends the next jobs behind it.
    @Test func aJobStoppedBeforeItsCallArrivesNeverRuns() async throws {
        let waiting = WaitingJobs()
        #expect(waiting.stop(job: 7) == false)   // Not here yet: nothing runs, nothing to kill.
        let stopped = waiting.ticket(job: 7)
        var refusal: (any Error)?
        do {
            _ = try await withCheckedThrowingContinuation { (call: CheckedContinuation<JobOutput, any Error>) in
                // Refused: the call is resumed at once. (Admitted by mistake, it is ended here, so
                // that the test fails rather than waits for ever.)
                if waiting.admit(stopped, call) {
                    waiting.start(stopped)?.resume(returning: JobOutput(bytes: [], runTime: .zero))
                }
            }
        } catch {
            refusal = error
        }
        #expect(refusal is CancellationError)
        #expect(waiting.start(stopped) == nil)

        // The next job, not stopped, waits and starts as usual.
        let next = waiting.ticket(job: 8)
        let output = try await withCheckedThrowingContinuation { (call: CheckedContinuation<JobOutput, any Error>) in
            #expect(waiting.admit(next, call))
            waiting.start(next)?.resume(returning: JobOutput(bytes: [8], runTime: .zero))
        }
        #expect(output.bytes == [8])
        // Running: a stop now says so (for the server to kill the process).
        #expect(waiting.stop(job: 8))
        waiting.finished(next, job: 8)
    }
}
