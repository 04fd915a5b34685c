import Foundation
import Testing

/// FleetMPI through `fleet launch`: real rank processes on loopback, started and stopped by the
/// launcher (which the test runs, and kills by PID if it overstays).
@Suite("fleet launch and FleetMPI ranks", .serialized)
struct LaunchTests {
    func launch(_ ranks: Int, _ scenario: String, options: [String] = [], seconds: Double = 120) async throws -> Outcome {
        try await run("fleet", ["launch", "-n", "\(ranks)"] + options + ["--", try product("MPITestPeer").path, scenario], seconds: seconds)
    }

    @Test(arguments: [1, 2, 3, 4])
    func collectivesAndMessagesMatchASerialComputation(ranks: Int) async throws {
        let outcome = try await launch(ranks, "collectives")
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(!outcome.stdout.contains("FAIL"), "\(outcome.stdout)")
        for rank in 0..<ranks {
            #expect(outcome.stdout.contains("rank \(rank) ok allreduce ring"))
            #expect(outcome.stdout.contains("rank \(rank) ok split messages stay apart"))
        }
    }

    @Test func aRankKilledMidCollectiveFailsEveryRankAndTheLauncher() async throws {
        let began = ContinuousClock.now
        let outcome = try await launch(4, "kill", options: ["--grace", "5"])
        #expect(outcome.status == 137, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stderr.contains("fleet launch: rank 1 failed: was killed by signal 9"), "\(outcome.stderr)")
        // Every other rank's pending allreduce failed with the error naming rank 1.
        for rank in [0, 2, 3] {
            #expect(outcome.stdout.contains("rank \(rank) error after"), "\(outcome.stdout)")
        }
        #expect(outcome.stdout.components(separatedBy: "rank 1 failed").count - 1 >= 3, "\(outcome.stdout)")
        #expect(began.duration(to: .now) < .seconds(20))
    }

    @Test func aRankThatThrowsFailsTheOthersWithItsError() async throws {
        let outcome = try await launch(3, "throw")
        #expect(outcome.status == 1, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stderr.contains("rank 2 failed: rank 2 refuses to go on"), "\(outcome.stderr)")
        // Each other rank fails in whichever barrier it is in when the news comes.
        for rank in [0, 1] {
            let lines = outcome.stdout.split(separator: "\n").filter { $0.hasPrefix("rank \(rank) ") }
            #expect(lines.contains { $0.hasSuffix(": rank 2 failed: rank 2 refuses to go on") }, "\(outcome.stdout)")
        }
    }

    @Test func aWrongSecretIsRejectedAndTheJobGoesOn() async throws {
        let outcome = try await launch(2, "secret")
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("intruder: rejected"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 sum after intruder: 2"))
        #expect(outcome.stdout.contains("rank 1 sum after intruder: 2"))
    }

    @Test func anOperationTimesOutAndTheRankGoesOn() async throws {
        let outcome = try await launch(2, "timeout", options: ["--timeout", "0.5"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 timeout: recv did not complete within 0.5 seconds"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 from finished rank: rank 1 has already finished"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 after timeout: after"))
        #expect(outcome.stdout.contains("rank 1 finalized"))
    }

    @Test func aRankThatEndsWithoutFinalizingIsAFailure() async throws {
        let outcome = try await launch(2, "nofinalize")
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
        #expect(outcome.stdout.contains("Computed value of pi on 2 processors is 3."), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("ms per round"))
    }

    @Test func launchingAMissingProgramFails() async throws {
        let outcome = try await run("fleet", ["launch", "-n", "2", "--", "/nonexistent/program"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("/nonexistent/program"), "\(outcome.stderr)")
    }
}
