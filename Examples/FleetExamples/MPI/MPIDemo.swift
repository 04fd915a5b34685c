import FleetMPI
import Foundation

/// `fleet demo mpi`: the seed's pi under `fleet launch -n 2`, with ranks that are copies of
/// `fleet` running `fleet example compute-pi`.
public enum MPIDemo {
    public static func run(fleet: String) async throws {
        print("fleet launch -n 2 -- compute-pi: 2 ranks on this host, connected by authenticated TCP;")
        print("each samples 10000 points per round, allreduce sums the estimates, rank 0 prints")
        print("(every 100th round here; the seed prints every round):")
        fflush(nil)
        let outcome = try await Launcher.run(Launcher.Job(
            ranks: 2, program: fleet, arguments: ["example", "compute-pi", "--every", "100", "--timing"]))
        guard outcome.status == 0 else {
            throw MPIDemoError(description: "compute-pi failed: rank \(outcome.failedRank ?? -1) \(outcome.failureReason ?? "")")
        }
    }
}

struct MPIDemoError: Error, CustomStringConvertible {
    var description: String
}
