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

    @OptionGroup var options: ComputePiOptions

    func run() async throws {
        try await options.run()
    }
}
