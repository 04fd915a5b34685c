import FleetJobs
import Foundation
import Synchronization
import Testing

enum Square: JobFunction {
    static func run(_ n: Int) -> Int { n * n }
}

struct Overdrawn: Error, Equatable {
    let amount: Int
}

enum Withdraw: JobFunction {
    static func run(_ amount: Int) throws -> Int {
        guard amount <= 100 else { throw Overdrawn(amount: amount) }
        return 100 - amount
    }
}

/// Blocks its worker until `gate` opens (bounded: at most 10 s).
final class Gate: Sendable {
    private let open = Atomic<Bool>(false)
    func release() { open.store(true, ordering: .releasing) }
    func wait() {
        for _ in 0..<10_000 where !open.load(ordering: .acquiring) { usleep(1_000) }
    }
}

@Suite("JobServer with thread workers")
struct JobServerTests {
    @Test func jobsReturnTypedResultsWhateverTheCompletionOrder() async throws {
        let server = JobServer(workers: 3)
        let jobs = (0..<200).map { server.submit(Square.self, $0) }
        for (n, job) in jobs.enumerated() {
            #expect(try await job.value == n * n)
        }
        #expect(server.stats.totalJobs == 200)
        await server.shutdown()
    }

    @Test func aThrowingJobRethrowsItsOwnError() async throws {
        let server = JobServer(workers: 2)
        #expect(try await server.submit(Withdraw.self, 30).value == 70)
        await #expect(throws: Overdrawn(amount: 500)) { try await server.submit(Withdraw.self, 500).value }
        // The server carries on.
        #expect(try await server.submit(Square.self, 9).value == 81)
        await server.shutdown()
    }

    @Test func closuresRunOnWorkerThreadsInParallel() async throws {
        let server = JobServer(workers: 4)
        let running = Atomic<Int>(0)
        let peak = Atomic<Int>(0)
        let gate = Gate()
        let jobs = (0..<4).map { _ in
            server.submit { () -> Int in
                let now = running.add(1, ordering: .relaxed).newValue
                var seen = peak.load(ordering: .relaxed)
                while now > seen {
                    let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
                    if exchanged { break }
                    seen = original
                }
                gate.wait()
                running.subtract(1, ordering: .relaxed)
                return 1
            }
        }
        // All four are running at once before any is let go.
        for _ in 0..<500 where peak.load(ordering: .relaxed) < 4 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(peak.load(ordering: .relaxed) == 4)
        gate.release()
        for job in jobs { #expect(try await job.value == 1) }
        await server.shutdown()
    }

    @Test func callbacksAndGroups() async throws {
        let server = JobServer(workers: 2)
        let seen = Mutex<[Int]>([])
        for n in 0..<20 {
            server.submit(Square.self, n, group: n.isMultiple(of: 2) ? "even" : "odd") { outcome in
                if case let .success(value) = outcome { seen.withLock { $0.append(value) } }
            }
        }
        await server.wait(group: "even")
        let evens = seen.withLock { Set($0) }
        #expect(evens.isSuperset(of: Set(stride(from: 0, to: 20, by: 2).map { $0 * $0 })))
        await server.wait()
        #expect(seen.withLock { Set($0) } == Set((0..<20).map { $0 * $0 }))
        await server.shutdown()
    }

    @Test func timeoutsAndCancellation() async throws {
        let server = JobServer(workers: 1)
        let gate = Gate()
        let blocker = server.submit { gate.wait(); return 0 }
        let late = server.submit(Square.self, 3, timeout: .milliseconds(100))
        await #expect(throws: JobError.timedOut(after: .milliseconds(100))) { try await late.value }
        let cancelled = server.submit(Square.self, 4)
        cancelled.cancel()
        await #expect(throws: JobError.cancelled) { try await cancelled.value }
        gate.release()
        #expect(try await blocker.value == 0)
        // Neither the timed-out nor the cancelled job ran.
        await server.wait()
        #expect(server.stats.totalJobs == 1)
        await server.shutdown()
    }

    @Test func workerCountChangesWhileRunning() async throws {
        let server = JobServer(workers: 1)
        #expect(server.workers == 1)
        server.setWorkers(3)
        #expect(server.workers == 3)
        let jobs = (0..<50).map { server.submit(Square.self, $0) }
        server.setWorkers(2)
        for (n, job) in jobs.enumerated() { #expect(try await job.value == n * n) }
        #expect(server.workers == 2)
        await server.shutdown()
    }

    @Test func loweringAndRaisingTheThreadCountRunsEachJobOnce() async throws {
        let server = JobServer(workers: 3)
        let runs = Mutex([Int](repeating: 0, count: 2_000))
        let jobs = (0..<2_000).map { index in
            server.submit { () -> Int in
                runs.withLock { $0[index] += 1 }
                usleep(200)
                return index
            }
        }
        for round in 0..<20 {
            server.setWorkers(round.isMultiple(of: 2) ? 1 : 4)
            try await Task.sleep(for: .milliseconds(10))
        }
        server.setWorkers(2)
        for (index, job) in jobs.enumerated() { #expect(try await job.value == index) }
        #expect(runs.withLock { $0.allSatisfy { $0 == 1 } })
        #expect(server.workers == 2)
        await server.shutdown()
    }

    @Test func shutdownFailsJobsThatNeverStarted() async throws {
        let server = JobServer(workers: 1)
        let gate = Gate()
        let running = server.submit { gate.wait(); return 1 }
        try await Task.sleep(for: .milliseconds(50))
        let queued = (0..<5).map { server.submit(Square.self, $0) }
        let shutdown = Task { await server.shutdown() }
        try await Task.sleep(for: .milliseconds(50))
        gate.release()
        await shutdown.value
        #expect(try await running.value == 1)
        for job in queued {
            await #expect(throws: JobError.serverShutDown) { try await job.value }
        }
        await #expect(throws: JobError.serverShutDown) { try await server.submit(Square.self, 1).value }
    }

    @Test func noWorkersAndNoNodesIsAnError() async throws {
        await #expect(throws: JobError.self) { _ = try await JobServer(workers: 0, isolation: .processes) }
        await #expect(throws: JobError.self) { _ = try await JobServer(workers: 0, isolation: .threads) }
    }

    @Test func statsTableLooksLikePPs() async throws {
        let server = JobServer(workers: 2)
        for n in 0..<8 { server.submit(Square.self, n) }
        await server.wait()
        let table = server.stats.table
        #expect(table.hasPrefix("Job execution statistics:\n job count | % of all jobs | job time sum | time per job | job server\n"))
        #expect(table.contains("         8 |        100.00 |"))
        #expect(table.contains("| local"))
        #expect(table.contains("Time elapsed since server creation"))
        await server.shutdown()
    }
}
