import Foundation
import Testing

/// Where the products built with the trait `MPI` are (`Scripts/test` sets it after
/// `swift build --traits MPI --scratch-path .build-mpi`).
private let traitProducts = ProcessInfo.processInfo.environment["FLEET_MPI_TRAIT_BUILD"]

/// FleetMPI on OpenMPI: the same rank programs as ``LaunchTests``, built with the trait `MPI`
/// and started by `mpirun` (ranks on shared memory, `--mca btl self,vader`). Runs when
/// `FLEET_MPI_TRAIT_BUILD` names that build (CI does).
@Suite("FleetMPI on an MPI library (trait MPI, under mpirun)", .serialized, .enabled(if: traitProducts != nil))
struct LibraryTests {
    func mpirun(_ ranks: Int, _ program: String, _ arguments: [String], seconds: Int = 120) async throws -> Outcome {
        let directory = try #require(traitProducts)
        let executable = URL(fileURLWithPath: directory).appendingPathComponent(program).path
        try #require(FileManager.default.isExecutableFile(atPath: executable), "\(program) was not built with the trait at \(directory)")
        // mpirun's own --timeout ends the ranks too, should the job hang; the watchdog is the backstop.
        return try await runExecutable(
            "/usr/bin/env",
            ["mpirun", "-n", "\(ranks)", "--oversubscribe", "--timeout", "\(seconds)", "--mca", "btl", "self,vader", executable] + arguments,
            environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"],
            seconds: Double(seconds + 30))
    }

    @Test(arguments: [2, 4])
    func collectivesAndMessagesMatchASerialComputation(ranks: Int) async throws {
        let outcome = try await mpirun(ranks, "MPITestPeer", ["collectives"])
        expectEveryCheckPassed(outcome, ranks: ranks)
    }

    @Test func largeAndOddSizedMessagesArriveIntact() async throws {
        let outcome = try await mpirun(2, "MPITestPeer", ["bulk"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(outcome.stdout.components(separatedBy: "ok bulk").count - 1 == 32, "\(outcome.stdout)")
    }

    @Test func operationsMadeFromTheMainActorRunOnTheLoopAndReturn() async throws {
        let outcome = try await mpirun(2, "MPITestPeer", ["mainactor"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed"), "\(outcome.stdout)")
        #expect(outcome.stdout.components(separatedBy: "ok main actor").count - 1 == 10, "\(outcome.stdout)")
    }

    @Test func aRankThatThrowsEndsTheJobWithItsReason() async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(3, "MPITestPeer", ["throw"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("rank 2 failed: rank 2 refuses to go on"), "\(outcome.stderr)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test func aRankKilledMidCollectiveEndsTheJob() async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(4, "MPITestPeer", ["kill"])
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("signal 9"), "\(outcome.stderr)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test func numbersFromAFinishedRankFailAtOnce() async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(2, "MPITestPeer", ["finished"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 numbers from finished rank: rank 1 has already finished"), "\(outcome.stdout)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test func aJobServerFarmsJobsOutToTheOtherRanksUnderMpirun() async throws {
        let outcome = try await mpirun(3, "MPITestPeer", ["farm"])
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("farm squares: 22140"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm error: job 7 refused"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm jobs on rank 0's process: 0"), "\(outcome.stdout)")
        for rank in 0..<3 {
            #expect(outcome.stdout.contains("rank \(rank) farm done: 3 ranks"), "\(outcome.stdout)")
        }
    }

    @Test func computePiRunsUnderMpirun() async throws {
        let outcome = try await mpirun(2, "compute-pi", ["--nsamples", "2000"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let last = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Computed value of pi on 2 processors is 3."), "\(last)")
    }
}
