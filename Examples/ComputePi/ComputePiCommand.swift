// compute-pi: the seed's pyMPI example — Monte-Carlo pi on every rank, summed by allreduce.
//
//     fleet launch -n 4 -- .build/release/compute-pi

import ArgumentParser
import FleetExamples

/// `compute-pi [--nsamples N]`: run under `fleet launch -n N`; alone it is a world of one rank.
@main
struct ComputePiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compute-pi",
        abstract: "The seed's pyMPI example: estimate pi on every rank, combine the estimates with allreduce.",
        discussion: """
            Start it with `fleet launch -n N -- compute-pi`. Each round every rank samples \
            --nsamples random points; rank 0 prints the combined estimate and its change since the \
            last round, until the change is below 1e-5.
            """
    )

    @Option(help: "Random points per rank per round (the seed's 10000).")
    var nsamples: Int = ComputePi.seedSamples

    @Option(help: "Print every Nth round's line (the seed prints every round).")
    var every: Int = 1

    @Flag(help: "Also print the rounds and the time per round.")
    var timing = false

    func validate() throws {
        guard nsamples >= 1 else { throw ValidationError("--nsamples must be at least 1.") }
        guard every >= 0 else { throw ValidationError("--every must not be negative.") }
    }

    func run() async throws {
        try await ComputePi.main(samples: nsamples, every: every, timing: timing)
    }
}
