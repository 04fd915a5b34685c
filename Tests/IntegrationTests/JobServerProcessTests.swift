import Foundation
import Testing

/// FleetJobs with worker processes: `JobTestPeer` and `sum-primes` start copies of themselves as
/// workers; these tests run them and check what they print.
@Suite("Job server with worker processes", .serialized)
struct JobServerProcessTests {
    @Test func jobsRunInWorkerProcesses() async throws {
        let outcome = try await run("JobTestPeer", ["squares"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("sum: 2686700"))
        #expect(outcome.stdout.contains("worker processes: 2, not this one: true"))
        #expect(outcome.stdout.contains("Job execution statistics:"))
    }

    @Test func crashesAndErrorsAreTypedAndTheServerCarriesOn() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-crash-once-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let outcome = try await run("JobTestPeer", ["errors", marker], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        // A Codable error thrown in a worker arrives as itself.
        #expect(outcome.stdout.contains("refused: Refused(no funds)"))
        // A worker killed mid-job: the job fails with workerCrashed naming the signal.
        #expect(outcome.stdout.contains("crash: error JobError the job's worker died: worker process"))
        #expect(outcome.stdout.contains("killed by signal 9"))
        // The worker is replaced and the server carries on; a retryable job runs again.
        #expect(outcome.stdout.contains("after crash: 81"))
        #expect(outcome.stdout.contains("retried: 42"))
        #expect(outcome.stdout.contains("workers: 2"))
    }

    @Test func aWorkerThatDiesBetweenJobsIsReplaced() async throws {
        let outcome = try await run("JobTestPeer", ["idlecrash"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("after idle crash: 2 workers, killed one gone: true"))
    }

    @Test func aProgramWithoutTheEntryHookFailsInsteadOfHanging() async throws {
        let outcome = try await run("JobTestPeer", ["nohook"], environment: ["JOB_TEST_SKIP_HOOK": "1"], seconds: 120)
        #expect(outcome.stdout.contains("job: error JobError no worker process is available"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("runWorkerIfRequested"))
    }

    @Test func cancellingARunningJobStopsItsWorker() async throws {
        let outcome = try await run("JobTestPeer", ["cancel"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("cancelled: error JobError the job was cancelled"))
        #expect(outcome.stdout.contains("timed out: error JobError the job did not finish within 0.5 seconds"))
        #expect(outcome.stdout.contains("after: 2 workers"))
        #expect(outcome.stdout.contains("stopped within 10 s: true"), "\(outcome.stdout)")
    }

    @Test func aCancelledJobWaitingInAWorkerNeverRuns() async throws {
        let outcome = try await withMarkerDirectory { directory in
            try await run("JobTestPeer", ["cancelqueued"], environment: ["JOB_TEST_DIR": directory.path], seconds: 120)
        }
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("workers up: 2"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("waiting job: error JobError the job was cancelled"), "\(outcome.stdout)")
        // Each worker held one job behind its running one; cancelled there, neither ran.
        #expect(outcome.stdout.contains("started first: 2, cancelled: 2, cancelled that ran: 0"), "\(outcome.stdout)")
    }

    @Test func changingTheWorkerCountRunsEachJobOnce() async throws {
        let outcome = try await withMarkerDirectory { directory in
            try await run("JobTestPeer", ["resize"], environment: ["JOB_TEST_DIR": directory.path], seconds: 120)
        }
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("resized: 300 jobs, 0 failed, once: 300, more than once: 0, never: 0"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("workers: 2"))
    }

    @Test func sumPrimesWithWorkerProcesses() async throws {
        let outcome = try await run("sum-primes", ["--workers", "2", "--processes"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("Starting Fleet with 2 local worker processes"))
        #expect(outcome.stdout.contains("Sum of primes below 100000 is 454396537"))
        #expect(outcome.stdout.contains("Sum of primes below 100700 is 460217613"))
    }
}
