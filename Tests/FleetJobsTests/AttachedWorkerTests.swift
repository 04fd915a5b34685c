import FleetActors
import FleetJobs
import FleetWire
import Foundation
import Testing

/// Workers that others start and that attach to the server by themselves (the ranks of an MPI
/// job, in `Communicator.withJobServer`), played here by tasks of the test process.
@Suite("JobServer with workers that attach by themselves")
struct AttachedWorkerTests {
    @Test func attachedWorkersRunTheJobsAndEachHasAStatsRow() async throws {
        let server = try await JobServer(awaitingWorkers: ["first", "second"], on: "127.0.0.1")
        let invitation = try #require(server.workerInvitation)
        let workers = (1...2).map { token in
            Task { try await JobServer.serveAsWorker(at: invitation.endpoint, secret: invitation.secret, token: UInt64(token)) }
        }
        let jobs = (0..<50).map { server.submit(Square.self, $0) }
        for (n, job) in jobs.enumerated() {
            #expect(try await job.value == n * n)
        }
        do {
            _ = try await server.submit(Withdraw.self, 500).value
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("Overdrawn"), "\(error)")
        }
        let rows = Dictionary(uniqueKeysWithValues: server.stats.nodes.map { ($0.name, $0.jobs) })
        #expect(rows["local"] == 0)
        #expect((rows["first"] ?? 0) + (rows["second"] ?? 0) == 51, "\(rows)")
        await server.shutdown()
        // Let go by the shutdown, each worker's serving ends.
        for worker in workers { _ = await worker.result }
    }

    @Test func aWorkerWithTheWrongSecretIsRefused() async throws {
        let server = try await JobServer(awaitingWorkers: ["only"], on: "127.0.0.1")
        let invitation = try #require(server.workerInvitation)
        await #expect(throws: HandshakeError.self) {
            try await JobServer.serveAsWorker(at: invitation.endpoint, secret: "not the secret", token: 1)
        }
        await server.shutdown()
    }

    @Test func whenTheLastWorkerGoesQueuedJobsFailInsteadOfWaiting() async throws {
        let server = try await JobServer(awaitingWorkers: ["only"], on: "127.0.0.1")
        let invitation = try #require(server.workerInvitation)
        let worker = Task { try await JobServer.serveAsWorker(at: invitation.endpoint, secret: invitation.secret, token: 1) }
        #expect(try await server.submit(Square.self, 3).value == 9)
        worker.cancel()   // The worker leaves, and nobody replaces it.
        _ = await worker.result
        // A job taken just as the worker leaves fails with workerCrashed; after that, every job
        // fails at once with workersUnavailable.
        var failure: (any Error)?
        for _ in 0..<100 where failure == nil {
            do {
                _ = try await server.submit(Square.self, 4).value
                try await Task.sleep(for: .milliseconds(50))
            } catch JobError.workerCrashed {
                continue
            } catch {
                failure = error
            }
        }
        guard case let .workersUnavailable(reason)? = failure as? JobError else {
            Issue.record("no workersUnavailable error: \(String(describing: failure))")
            await server.shutdown()
            return
        }
        #expect(reason.contains("only"), "\(reason)")
        await server.shutdown()
    }
}
