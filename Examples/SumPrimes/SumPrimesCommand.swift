// sum-primes: the seed's Parallel Python example — sum the primes below each input, in parallel.

import ArgumentParser
import FleetExamples
import FleetJobs
import Foundation

/// The entry point: worker processes (copies of this program) serve jobs; otherwise the command.
@main
enum SumPrimesMain {
    static func main() async {
        await JobServer.runWorkerIfRequested()
        await SumPrimesCommand.main()
    }
}

/// `sum-primes [--workers N] [--processes] [INPUT ...]`: the seed's pp program on a ``JobServer``.
struct SumPrimesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sum-primes",
        abstract: "The seed's Parallel Python example: sum the primes below each input, one job per input.",
        discussion: """
            Without inputs it runs the seed's 8 jobs, 100000 to 100700. Jobs run on --workers \
            threads of this process (Swift has no GIL), or worker processes with --processes; the stats table shows what each node did.
            """
    )

    @Option(help: "Worker threads. Default: active cores.")
    var workers: Int?

    @Flag(help: "Run the jobs in worker processes (copies of this program) instead of threads.")
    var processes = false

    @Option(name: .customLong("node"), help: "A remote node HOST:PORT (repeatable; not available yet: issue #4).")
    var nodes: [String] = []

    @Argument(help: "The numbers to sum the primes below. Default: the seed's 100000 … 100700.")
    var inputs: [Int] = []

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1.") }
        guard nodes.isEmpty else {
            throw ValidationError("--node: remote nodes are not available yet (FleetJobs, issue #4); use local --workers.")
        }
    }

    func run() async throws {
        try await SumPrimesProgram.run(
            workers: workers ?? ProcessInfo.processInfo.activeProcessorCount,
            isolation: processes ? .processes : .threads,
            inputs: inputs.isEmpty ? SumPrimesProgram.seedInputs : inputs)
    }
}
