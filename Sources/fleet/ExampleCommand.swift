// `fleet example NAME`: runs one of the seed's programs inside `fleet` itself, so that `fleet demo`
// can start it (as ranks under `fleet launch`) without the examples' own executables.

import ArgumentParser
import FleetExamples

/// `fleet example compute-pi [--nsamples N] [--every N] [--timing]`, `fleet example mpi-bench
/// [--quick]` (hidden: `fleet demo mpi` and `fleet bench mpi` launch them as ranks).
struct ExampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "example",
        abstract: "Run one of the seed's programs in this process (used by fleet demo).",
        shouldDisplay: false
    )

    enum Name: String, ExpressibleByArgument {
        case computePi = "compute-pi"
        case mpiBench = "mpi-bench"
    }

    @Argument(help: "The program: compute-pi.")
    var name: Name

    @OptionGroup var computePi: ComputePiOptions

    @Flag(help: "mpi-bench: short timings.")
    var quick = false

    func run() async throws {
        switch name {
        case .computePi:
            try await computePi.run()
        case .mpiBench:
            try await MPIBench.rank(quick: quick)
        }
    }
}
