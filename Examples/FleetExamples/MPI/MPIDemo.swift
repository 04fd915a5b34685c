import FleetMPI
import Foundation

/// `fleet demo mpi`: the seed's pi under `fleet launch -n 2`, with ranks that are copies of
/// `fleet` running `fleet example compute-pi`.
public enum MPIDemo {
    /// Runs compute-pi on 2 ranks over TCP, then over shared memory.
    public static func run(fleet: String) async throws {
        print("fleet launch -n 2 -- compute-pi: 2 ranks on this host; each samples 10000 points per")
        print("round, allreduce sums the estimates, rank 0 prints (every 100th round here; the seed")
        print("prints every round).")
        for (transport, how) in [(Launcher.Transport.tcp, "connected by authenticated TCP"), (.sharedMemory, "through rings in shared memory")] {
            print("\n--transport \(transport): ranks \(how):")
            fflush(nil)
            let outcome = try await Launcher.run(Launcher.Job(
                ranks: 2, program: fleet, arguments: ["example", "compute-pi", "--every", "100", "--timing"],
                transport: transport))
            guard outcome.status == 0 else {
                throw MPIDemoError(description: "compute-pi failed: rank \(outcome.failedRank ?? -1) \(outcome.failureReason ?? "")")
            }
        }
    }
}

struct MPIDemoError: Error, CustomStringConvertible {
    var description: String
}
