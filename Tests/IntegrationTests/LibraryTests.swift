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
    /// How the ranks' messages travel: on one host, through FleetMPI's rings in the library's
    /// shared window (the default), or through the library itself (`FLEET_MPI_NODE_RINGS=0`,
    /// as between hosts).
    enum Messages: String, CaseIterable, CustomTestStringConvertible {
        case rings = "mpi+rings"
        case library = "mpi"
        var testDescription: String { rawValue }
    }

    /// Runs `program` on `ranks` ranks under mpirun, with `environment` for every rank.
    func mpirun(
        _ ranks: Int, _ program: String, _ arguments: [String], messages: Messages, environment: [String: String] = [:],
        seconds: Int = 120
    ) async throws -> Outcome {
        let directory = try #require(traitProducts)
        let executable = URL(fileURLWithPath: directory).appendingPathComponent(program).path
        try #require(FileManager.default.isExecutableFile(atPath: executable), "\(program) was not built with the trait at \(directory)")
        // mpirun's own --timeout ends the ranks too, should the job hang; the watchdog is the backstop.
        return try await runExecutable(
            "/usr/bin/env",
            ["mpirun", "-n", "\(ranks)", "--oversubscribe", "--timeout", "\(seconds)", "--mca", "btl", "self,vader",
             "-x", "FLEET_MPI_NODE_RINGS"] + environment.keys.sorted().flatMap { ["-x", $0] } + [executable] + arguments,
            environment: [
                "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1",
                "FLEET_MPI_NODE_RINGS": messages == .rings ? "1" : "0",
            ].merging(environment) { $1 },
            seconds: Double(seconds + 30))
    }

    /// Every rank's checks passed, over `messages`.
    func expectPassed(_ outcome: Outcome, over messages: Messages) {
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("checks: 0 failed (messages: \(messages.rawValue))"), "\(outcome.stdout)")
    }

    @Test(arguments: [2, 4], Messages.allCases)
    func collectivesAndMessagesMatchASerialComputation(ranks: Int, messages: Messages) async throws {
        let outcome = try await mpirun(ranks, "MPITestPeer", ["collectives"], messages: messages)
        expectEveryCheckPassed(outcome, ranks: ranks)
        expectPassed(outcome, over: messages)
    }

    @Test(arguments: Messages.allCases)
    func largeAndOddSizedMessagesArriveIntact(messages: Messages) async throws {
        // Rings of 64 KiB: the larger messages travel as fragments.
        let outcome = try await mpirun(2, "MPITestPeer", ["bulk"], messages: messages, environment: ["FLEET_MPI_SHM_RING_BYTES": "65536"])
        expectPassed(outcome, over: messages)
        #expect(outcome.stdout.components(separatedBy: "ok bulk").count - 1 == 32, "\(outcome.stdout)")
    }

    @Test(arguments: Messages.allCases)
    func aMessageStillBeingWrittenDoesNotStopTheCollectivesThatFollow(messages: Messages) async throws {
        // Rings of 64 KiB, a message of 1 MiB: most of it waits for room while its sender
        // enters a barrier.
        let outcome = try await mpirun(
            2, "MPITestPeer", ["sendbarrier"], messages: messages, environment: ["FLEET_MPI_SHM_RING_BYTES": "65536"], seconds: 60)
        expectPassed(outcome, over: messages)
        #expect(outcome.stdout.components(separatedBy: "ok send then barrier").count - 1 == 2, "\(outcome.stdout)")
    }

    @Test func aWorldOfOneRankRunsUnderMpirun() async throws {
        let outcome = try await mpirun(1, "MPITestPeer", ["collectives"], messages: .rings)
        expectEveryCheckPassed(outcome, ranks: 1)
        // One rank has nobody to share memory with: the library alone.
        expectPassed(outcome, over: .library)
    }

    @Test func aRingSizeOnRankZeroThatMakesNoRingEndsTheJobAtOnce() async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(
            2, "MPITestPeer", ["collectives"], messages: .rings, environment: ["FLEET_MPI_SHM_RING_BYTES": "5000"], seconds: 60)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("FLEET_MPI_SHM_RING_BYTES on rank 0 makes no ring"), "\(outcome.stderr)")
        #expect(began.duration(to: .now) < .seconds(30))
    }

    @Test(arguments: Messages.allCases)
    func operationsMadeFromTheMainActorRunOnTheLoopAndReturn(messages: Messages) async throws {
        let outcome = try await mpirun(2, "MPITestPeer", ["mainactor"], messages: messages)
        expectPassed(outcome, over: messages)
        #expect(outcome.stdout.components(separatedBy: "ok main actor").count - 1 == 10, "\(outcome.stdout)")
    }

    @Test(arguments: Messages.allCases)
    func anOperationTimesOutAndTheRankGoesOn(messages: Messages) async throws {
        let outcome = try await mpirun(2, "MPITestPeer", ["timeout"], messages: messages, environment: ["FLEET_MPI_TIMEOUT": "0.5"], seconds: 60)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 timeout: recv did not complete within 0.5 seconds"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 from finished rank: rank 1 has already finished"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 0 after timeout: after"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("rank 1 finalized"), "\(outcome.stdout)")
    }

    @Test(arguments: Messages.allCases)
    func aRankThatThrowsEndsTheJobWithItsReason(messages: Messages) async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(3, "MPITestPeer", ["throw"], messages: messages)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("rank 2 failed: rank 2 refuses to go on"), "\(outcome.stderr)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test(arguments: Messages.allCases)
    func aRankKilledMidCollectiveEndsTheJob(messages: Messages) async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(4, "MPITestPeer", ["kill"], messages: messages)
        #expect(outcome.status != 0)
        #expect(outcome.stderr.contains("signal 9"), "\(outcome.stderr)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test(arguments: Messages.allCases)
    func numbersFromAFinishedRankFailAtOnce(messages: Messages) async throws {
        let began = ContinuousClock.now
        let outcome = try await mpirun(2, "MPITestPeer", ["finished"], messages: messages)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("rank 0 numbers from finished rank: rank 1 has already finished"), "\(outcome.stdout)")
        #expect(began.duration(to: .now) < .seconds(60))
    }

    @Test(arguments: Messages.allCases)
    func aJobServerFarmsJobsOutToTheOtherRanksUnderMpirun(messages: Messages) async throws {
        let outcome = try await mpirun(3, "MPITestPeer", ["farm"], messages: messages)
        #expect(outcome.status == 0, "\(outcome.stdout)\n\(outcome.stderr)")
        #expect(outcome.stdout.contains("farm squares: 22140"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm error: job 7 refused"), "\(outcome.stdout)")
        #expect(outcome.stdout.contains("farm jobs on rank 0's process: 0"), "\(outcome.stdout)")
        for rank in 0..<3 {
            #expect(outcome.stdout.contains("rank \(rank) farm done: 3 ranks"), "\(outcome.stdout)")
        }
    }

    /// Runs MPITestPeer's `collectives` on two ranks as two programs (MPMD), each rank with its
    /// own `environment`.
    func collectivesOnTwoRanks(environments: [[String: String]]) async throws -> Outcome {
        let directory = try #require(traitProducts)
        let executable = URL(fileURLWithPath: directory).appendingPathComponent("MPITestPeer").path
        let programs = environments.map { environment in
            ["-n", "1", "/usr/bin/env"] + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [executable, "collectives"]
        }
        return try await runExecutable(
            "/usr/bin/env",
            ["mpirun", "--timeout", "120", "--mca", "btl", "self,vader"] + Array(programs.joined(separator: [":"])),
            environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"],
            seconds: 150)
    }

    @Test func oneRankThatWantsNoRingsKeepsEveryRankOnTheLibrary() async throws {
        let outcome = try await collectivesOnTwoRanks(environments: [["FLEET_MPI_NODE_RINGS": "0"], [:]])
        expectEveryCheckPassed(outcome, ranks: 2)
        expectPassed(outcome, over: .library)
    }

    @Test func onlyRankZerosRingSizeCounts() async throws {
        // Rank 1 asks for other rings (and for none that makes sense): rank 0's are made.
        let outcome = try await collectivesOnTwoRanks(environments: [[:], ["FLEET_MPI_SHM_RING_BYTES": "junk"]])
        expectEveryCheckPassed(outcome, ranks: 2)
        expectPassed(outcome, over: .rings)
    }

    @Test func computePiRunsUnderMpirun() async throws {
        let outcome = try await mpirun(2, "compute-pi", ["--nsamples", "2000"], messages: .rings)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let last = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasPrefix("Computed value of pi on 2 processors is 3."), "\(last)")
    }
}
