import Foundation
import Testing

/// FleetMPI through `fleet launch`: real rank processes on loopback, started and stopped by the
/// launcher (which the test runs, and kills by PID if it overstays).
@Suite("fleet launch and FleetMPI ranks", .serialized)
struct LaunchTests {
    /// The transports every test runs over.
    static let transports = ["tcp", "shm"]

    func launch(
        _ ranks: Int, _ scenario: String, transport: String = "tcp", options: [String] = [], seconds: Double = 120
    ) async throws -> Outcome {
        try await run(
            "fleet", ["launch", "-n", "\(ranks)", "--transport", transport] + options + ["--", try product("MPITestPeer").path, scenario],
            seconds: seconds)
    }

    @Test(arguments: [1, 2, 3, 4], transports)
    func collectivesAndMessagesMatchASerialComputation(ranks: Int, transport: String) async throws {
        let outcome = try await launch(ranks, "collectives", transport: transport)
        expectEveryCheckPassed(outcome, ranks: ranks)
    }

    /// Over shared memory, a large allreduce takes its chunks straight from the ring (through
    /// its receives' sinks); small rings (64 KiB, 4 KiB) cut them into fragments that split
    /// elements, wrap around, and leave the message header unaligned.
    @Test(arguments: [2, 3], ["65536", "4096"])
    func collectivesOverSmallRingsMatchASerialComputation(ranks: Int, ringBytes: String) async throws {
        let outcome = try await run(
            "fleet", ["launch", "-n", "\(ranks)", "--transport", "shm", "--", try product("MPITestPeer").path, "collectives"],
            environment: ["FLEET_MPI_SHM_RING_BYTES": ringBytes], seconds: 120)
        expectEveryCheckPassed(outcome, ranks: ranks)
    }

    @Test(arguments: ["lots", "5000", "2048", "4611686018427387904"])
    func aRingSizeThatMakesNoRingIsRefusedByTheLauncher(ringBytes: String) async throws {
        let outcome = try await run(
            "fleet", ["launch", "-n", "2", "--transport", "shm", "--", try product("MPITestPeer").path, "collectives"],
            environment: ["FLEET_MPI_SHM_RING_BYTES": ringBytes], seconds: 60)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("FLEET_MPI_SHM_RING_BYTES=\(ringBytes): a ring takes a power of two"), "\(outcome.stderr)")
    }

    /// Small rings (64 KiB) make every large message travel in fragments and wrap around.
    @Test(arguments: [(2, "tcp"), (2, "shm"), (4, "shm")], [nil, "65536"])
    func largeAndOddSizedMessagesArriveIntactBothWaysAtOnce(ranks: (Int, String), ringBytes: String?) async throws {
        let outcome = try await run(
            "fleet", ["launch", "-n", "\(ranks.0)", "--transport", ranks.1, "--", try product("MPITestPeer").path, "bulk"],
            environment: ringBytes.map { ["FLEET_MPI_SHM_RING_BYTES": $0] } ?? [:], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(!outcome.stdout.contains("FAIL"), "\(outcome.stdout)")
        #expect(outcome.stdout.components(separatedBy: "ok bulk").count - 1 == 16 * ranks.0, "\(outcome.stdout)")
    }

    /// A send still being written (1 MiB through rings of 64 KiB) while its sender runs
    /// collectives, and its request then waited for from the main actor (the body of
    /// `withWorld` in top-level code): the wait hops to the rank's loop, where the links live.
    @Test(arguments: transports)
    func aSendStillBeingWrittenIsWaitedForFromTheMainActor(transport: String) async throws {
        let outcome = try await run(
            "fleet", ["launch", "-n", "3", "--transport", transport, "--", try product("MPITestPeer").path, "sendbarrier"],
            environment: ["FLEET_MPI_SHM_RING_BYTES": "65536"], seconds: 120)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(outcome.stdout.components(separatedBy: "ok send then barrier").count - 1 == 2, "\(outcome.stdout)")
    }

    @Test(arguments: transports)
    func aRankKilledMidCollectiveFailsEveryRankAndTheLauncher(transport: String) async throws {
        let began = ContinuousClock.now
        let outcome = try await launch(4, "kill", transport: transport, options: ["--grace", "5"])
        #expect(outcome.status == 137, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stderr.contains("fleet launch: rank 1 failed: was killed by signal 9"), "\(outcome.stderr)")
        // Every other rank's pending allreduce failed with the error naming rank 1.
        for rank in [0, 2, 3] {
            #expect(outcome.stdout.contains("rank \(rank) error after"), "\(outcome.stdout)")
        }
        #expect(outcome.stdout.components(separatedBy: "rank 1 failed").count - 1 >= 3, "\(outcome.stdout)")
        #expect(began.duration(to: .now) < .seconds(20))
    }

    @Test(arguments: transports)
    func aRankThatThrowsFailsTheOthersWithItsError(transport: String) async throws {
        let outcome = try await launch(3, "throw", transport: transport)
        #expect(outcome.status == 1, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stderr.contains("rank 2 failed: rank 2 refuses to go on"), "\(outcome.stderr)")
        // Each other rank fails in whichever barrier it is in when the news comes.
        for rank in [0, 1] {
            let lines = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("rank \(rank) ") }
            #expect(lines.contains { $0.hasSuffix(": rank 2 failed: rank 2 refuses to go on") }, "\(outcome.stdout)")
        }
    }

    @Test(arguments: [1, 3], transports)
    func operationsMadeFromTheMainActorRunOnTheLoopAndReturn(ranks: Int, transport: String) async throws {
        let outcome = try await launch(ranks, "mainactor", transport: transport)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(outcome.stdout.components(separatedBy: "ok main actor").count - 1 == 5 * ranks, "\(outcome.stdout)")
    }

    @Test func aWrongSecretIsRejectedAndTheJobGoesOn() async throws {
        let outcome = try await launch(2, "secret")
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("intruder: rejected"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 sum after intruder: 2"))
        #expect(outcome.stdout.contains("rank 1 sum after intruder: 2"))
    }

    @Test(arguments: transports)
    func anOperationTimesOutAndTheRankGoesOn(transport: String) async throws {
        let outcome = try await launch(2, "timeout", transport: transport, options: ["--timeout", "0.5"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 timeout: recv did not complete within 0.5 seconds"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 from finished rank: rank 1 has already finished"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 after timeout: after"))
        #expect(outcome.stdout.contains("rank 1 finalized"))
    }

    @Test(arguments: transports)
    func aRankThatEndsWithoutFinalizingIsAFailure(transport: String) async throws {
        let outcome = try await launch(2, "nofinalize", transport: transport)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("rank 1 failed: exited without finalizing"), "\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 error: rank 1 failed"), "\(outcome.stdout)")
    }

    @Test func computePiPrintsTheSeedsLines() async throws {
        let outcome = try await run("fleet", ["launch", "-n", "2", "--", try product("compute-pi").path, "--nsamples", "2000"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.contains("pi: "))
        #expect(outcome.stdout.contains(" - delta: "))
        let last = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Computed value of pi on 2 processors is 3."), "\(last)")
    }

    @Test func demoMPIRunsComputePiUnderTheLauncher() async throws {
        let outcome = try await run("fleet", ["demo", "mpi"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(outcome.stdout.components(separatedBy: "Computed value of pi on 2 processors is 3.").count == 3, "\(outcome.stdout)")
        #expect(outcome.stdout.contains("--transport tcp"))
        #expect(outcome.stdout.contains("--transport shm"))
        #expect(outcome.stdout.contains("ms per round"))
    }

    @Test(arguments: [1, 3], transports)
    func aJobServerFarmsJobsOutToTheOtherRanks(ranks: Int, transport: String) async throws {
        let outcome = try await launch(ranks, "farm", transport: transport)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("farm squares: 22140"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm error: job 7 refused"), "\(outcome.stdout)")
        for rank in 0..<ranks {
            #expect(outcome.stdout.contains("rank \(rank) farm done: \(ranks) ranks"), "\(outcome.stdout)")
        }
        let rows = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("farm node rank ") }
        if ranks == 1 {
            // Alone, the rank runs the jobs on its own threads.
            #expect(outcome.stdout.contains("farm node local: 41 jobs"), "\(outcome.stdout)")
        } else {
            // Every job ran on a worker rank, none in rank 0's process; one stats row per rank.
            #expect(outcome.stdout.contains("farm jobs on rank 0's process: 0"), "\(outcome.stdout)")
            #expect(rows.count == ranks - 1, "\(outcome.stdout)")
            let counted = rows.compactMap { Int($0.split(separator: " ")[4]) }.reduce(0, +)
            #expect(counted == 41, "\(outcome.stdout)")
        }
    }

    @Test func aWorkerRankThatDiesFailsItsJobAndTheOthersFinish() async throws {
        let outcome = try await launch(3, "farmdeath", options: ["--grace", "10"])
        #expect(outcome.status != 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("farm crashed: "), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("lost its connection to the job server"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm squares after the death: 2870"), "\(outcome.stdout)")
        #expect(outcome.stderr.contains("was killed by signal 9"), "\(outcome.stderr)")
    }

    @Test func launchingAMissingProgramFails() async throws {
        let outcome = try await run("fleet", ["launch", "-n", "2", "--", "/nonexistent/program"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("/nonexistent/program"), "\(outcome.stderr)")
    }
}

/// MPITestPeer's `collectives` scenario passed on every one of `ranks` ranks.
func expectEveryCheckPassed(_ outcome: Outcome, ranks: Int, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)", sourceLocation: sourceLocation)
    #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)", sourceLocation: sourceLocation)
    #expect(!outcome.stdout.contains("FAIL"), "\(outcome.stdout)", sourceLocation: sourceLocation)
    for rank in 0..<ranks {
        #expect(outcome.stdout.contains("rank \(rank) ok allreduce ring"), sourceLocation: sourceLocation)
        #expect(outcome.stdout.contains("rank \(rank) ok allreduce ring of a million"), sourceLocation: sourceLocation)
        #expect(outcome.stdout.contains("rank \(rank) ok split messages stay apart"), sourceLocation: sourceLocation)
    }
}
